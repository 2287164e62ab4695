// The page's strings in the user's language (the i18n-data JSON the server renders), shared by
// every script of the page: t(key, params) fills {name} placeholders; has(key) says whether the
// catalogue knows a key; str(v) is "" for nothing; queue(id) and number(did) are the names a
// person reads for the ids the messages carry (the "cc-names" JSON, where the page has it).
(function () {
  "use strict";

  var strings = {};
  try {
    strings = JSON.parse(document.getElementById("i18n-data").textContent) || {};
  } catch (e) {
    strings = {};
  }
  function t(key, params) {
    var s = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (params) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) {
        return Object.prototype.hasOwnProperty.call(params, k) ? String(params[k]) : m;
      });
    }
    return s;
  }
  function str(v) {
    return v === null || v === undefined ? "" : String(v);
  }
  function has(key) {
    return Object.prototype.hasOwnProperty.call(strings, key);
  }
  var names = {};
  var block = document.getElementById("cc-names");
  try {
    names = (block && JSON.parse(block.textContent)) || {};
  } catch (e) {
    names = {};
  }
  function named(kind, id) {
    var table = names[kind] || {};
    var key = str(id);
    return Object.prototype.hasOwnProperty.call(table, key) ? String(table[key]) : key;
  }
  function queue(id) { return named("queues", id); }
  function number(id) { return named("numbers", id); }
  window.ccI18n = { t: t, str: str, has: has, queue: queue, number: number };
})();
