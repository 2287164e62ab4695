// Seat console, knowledge-base part: articles suggested while the phone rings (from the voice
// menu's choice and the caller's recent orders), a search per keystroke, the spoken answer one
// key away (Alt+1..5), "answered with this article" (a 直接答复 order linked to the article) and
// "wrong or missing" feedback. Listens to console.js's "cc:pop". Article text is shown with
// textContent only.
(function () {
  "use strict";

  var panel = document.getElementById("kb-panel");
  var input = document.getElementById("kb-q");
  var list = document.getElementById("kb-results");
  var detail = document.getElementById("kb-article");
  var message = document.getElementById("kb-message");
  var source = document.getElementById("kb-source");
  if (!panel || !input || !list || !detail) return;

  var t = window.ccI18n.t; // i18n.js
  var str = window.ccI18n.str;
  var api = window.cc.api; // cc.js

  var call = { linkedid: "", resident_id: null, ivr_category: "", caller_phone: "", caller_name: "" };
  var items = [];
  var current = null;
  var seq = 0; // answers to older requests are dropped
  var timer = null;

  function say(key, params) { message.textContent = key ? t(key, params) : ""; }
  function field(name) { return detail.querySelector('[data-field="' + name + '"]'); }

  function show(rows, why) {
    items = rows || [];
    list.textContent = "";
    source.textContent = why ? t(why) : "";
    items.forEach(function (a, i) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.dataset.articleId = String(a.id);
      b.textContent = str(a.title); // the list numbers it: Alt+number opens it
      b.addEventListener("click", function () { open(a.id); });
      li.appendChild(b);
      var cat = document.createElement("span");
      cat.className = "muted";
      cat.textContent = " " + str(a.category);
      li.appendChild(cat);
      list.appendChild(li);
    });
  }

  function open(id) {
    api("GET", "/api/kb/articles/" + Number(id)).then(function (r) {
      if (r.status !== 200) return;
      current = r.data;
      field("title").textContent = str(current.title);
      field("spoken").textContent = str(current.spoken || current.answer);
      field("answer").textContent = str(current.answer);
      field("office").textContent = str(current.owner_office);
      field("source").textContent = str(current.source);
      field("until").textContent = current.valid_until ? t("kb.console.until", { day: str(current.valid_until) }) : "";
      var files = field("files");
      files.textContent = "";
      (current.attachments || []).forEach(function (f) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = "/kb/articles/" + Number(current.id) + "/attachments/" + encodeURIComponent(str(f.id));
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = str(f.name);
        li.appendChild(a);
        files.appendChild(li);
      });
      detail.hidden = false;
      detail.dataset.articleId = String(current.id);
      say("");
    });
  }

  function search(final) {
    var q = input.value.trim();
    var mine = ++seq;
    if (!q) { show([], ""); return; }
    api("GET", "/api/kb/search?q=" + encodeURIComponent(q) + (final ? "" : "&typing=true")).then(function (r) {
      if (mine !== seq || r.status !== 200) return;
      show(r.data, r.data.length ? "kb.console.found" : "kb.console.none");
    });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { search(false); }, 60);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(timer); search(true); }
  });

  document.addEventListener("cc:pop", function (ev) {
    var msg = ev.detail || {};
    var linkedid = str(msg.linkedid);
    var rid = msg.resident && typeof msg.resident === "object" ? Number(msg.resident.id) || null : null;
    var fresh = linkedid !== call.linkedid;
    var ivr = str(msg.ivr_category);
    // The pop can learn the resident or the menu choice after it first rang (the route, a
    // re-sync, a seat's link): suggest again then, unless the seat is already searching.
    var learned = !fresh && (rid !== call.resident_id || ivr !== call.ivr_category) && !input.value.trim();
    call = {
      linkedid: linkedid, resident_id: rid, ivr_category: ivr,
      caller_phone: str(msg.caller), caller_name: str(msg.caller_name)
    };
    if (!fresh && !learned) return;
    if (fresh) {
      detail.hidden = true;
      current = null;
      say("");
    }
    var url = "/api/kb/suggest?ivr_category=" + encodeURIComponent(ivr) +
      (rid ? "&resident_id=" + rid : "");
    var mine = ++seq;
    api("GET", url).then(function (r) {
      if (mine !== seq || r.status !== 200) return;
      show(r.data, "kb.console.suggested");
    });
  });

  document.getElementById("kb-answered").addEventListener("click", function () {
    if (!current) return;
    api("POST", "/api/kb/answer", {
      article_id: current.id,
      linkedid: call.linkedid,
      resident_id: call.resident_id,
      caller_phone: call.caller_phone,
      caller_name: call.caller_name
    }).then(function (r) {
      if (r.status === 201) say("kb.console.recorded", { number: str(r.data.number) });
      else say("kb.console.failed");
    });
  });

  function feedback(kind) {
    var text = window.prompt(t(kind === "wrong" ? "kb.console.wrong_prompt" : "kb.console.missing_prompt"), "");
    if (text === null) return;
    api("POST", "/api/kb/feedback", {
      article_id: kind === "wrong" && current ? current.id : null,
      kind: kind,
      text: text.slice(0, 1000),
      query: input.value.trim().slice(0, 200)
    }).then(function (r) { say(r.status === 201 ? "kb.console.thanks" : "kb.console.failed"); });
  }
  document.getElementById("kb-wrong").addEventListener("click", function () { feedback("wrong"); });
  document.getElementById("kb-missing").addEventListener("click", function () { feedback("missing"); });

  // Alt+K the search box; Alt+1..5 an article of the list, its spoken answer shown to read out.
  document.addEventListener("keydown", function (ev) {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key.toLowerCase() === "k") { ev.preventDefault(); input.focus(); return; }
    var n = Number(ev.key);
    if (n >= 1 && n <= 5 && items[n - 1]) { ev.preventDefault(); open(items[n - 1].id); }
  });
})();
