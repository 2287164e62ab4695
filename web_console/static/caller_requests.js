/* Voicemails and callback requests left out of hours: the seat's console lists
   them, plays a voicemail (the recording is fetched only when played: each listen is audited)
   and marks an item handled. Everything shown is set as text, never as HTML. */
(function () {
  "use strict";
  var section = document.getElementById("caller-requests");
  if (!section) return;
  var tbody = section.querySelector("tbody");
  var api = window.cc.api; // cc.js

  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    tr.appendChild(td);
    return td;
  }

  function row(item) {
    var tr = document.createElement("tr");
    var id = Number(item.id);
    tr.setAttribute("data-id", String(id));
    tr.setAttribute("data-kind", String(item.kind));
    cell(tr, String(item.created_at || "").replace("T", " ").slice(0, 16));
    cell(tr, item.kind === "voicemail" ? section.dataset.voicemail : section.dataset.callback);
    cell(tr, item.caller);
    var actions = cell(tr, "");
    if (item.has_recording) {
      var audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = "/api/caller-requests/" + id + "/recording";
      actions.appendChild(audio);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.setAttribute("data-action", "done");
    button.textContent = section.dataset.done;
    button.addEventListener("click", function () { done(id); });
    actions.appendChild(button);
    return tr;
  }

  function load() {
    api("GET", "/api/caller-requests")
      .then(function (r) { return r.status === 200 ? r.data : { items: [] }; })
      .then(function (data) {
        tbody.textContent = "";
        (data.items || []).forEach(function (item) { tbody.appendChild(row(item)); });
      })
      .catch(function () {});
  }

  function done(id) {
    api("POST", "/api/caller-requests/" + id + "/done").then(load, load);
  }

  load();
  setInterval(load, 60000);
})();
