// Call control. On the seat console: hang up / transfer the call on screen,
// click-to-call, queue login and logout, callbacks waiting, recordings of the day's calls.
// On the wallboard: listen, whisper or barge into a seat that is on a call.
// The server checks everything again (the engine against its live model); data from the
// server is written with textContent only.
(function () {
  "use strict";

  var t = window.ccI18n.t; // i18n.js
  var str = window.ccI18n.str;

  var api = window.cc.api; // cc.js
  var TYPES = window.cc.types;

  // ---------------------------------------------------------------- the wallboard: listen-in
  var seatsBody = document.querySelector("#seats tbody");
  if (seatsBody) {
    var boardMessage = document.createElement("p");
    boardMessage.className = "cc-message";
    boardMessage.setAttribute("role", "status");
    seatsBody.closest("table").after(boardMessage);
    var decorate = function () {
      seatsBody.querySelectorAll("tr").forEach(function (row) {
        if (row.dataset.spy === "1" || row.dataset.state !== "talking") return;
        row.dataset.spy = "1";
        var td = document.createElement("td");
        td.className = "spy";
        ["listen", "whisper", "barge"].forEach(function (mode) {
          var b = document.createElement("button");
          b.type = "button";
          b.dataset.spy = mode;
          b.textContent = t("cc.spy." + mode);
          b.addEventListener("click", function () {
            var ext = row.dataset.ext;
            api("POST", "/api/spy", { ext: ext, mode: mode }).then(function (r) {
              boardMessage.textContent = r.status === 202 ? t("cc.spy_ringing", { ext: ext })
                : t("cc.failed", { error: str(r.data.message || r.data.error || r.status) });
            });
          });
          td.appendChild(b);
        });
        row.appendChild(td);
      });
    };
    new MutationObserver(decorate).observe(seatsBody, { childList: true });
    return;
  }

  // ---------------------------------------------------------------- the seat console
  var panel = document.getElementById("call-control");
  if (!panel) return;
  var area = document.getElementById("pop-area");
  var onCall = panel.querySelector('[data-block="on-call"]');
  var kind = document.getElementById("cc-kind");
  var target = document.getElementById("cc-target");
  var message = panel.querySelector('[data-field="cc-message"]');
  var dialForm = panel.querySelector('[data-form="dial"]');
  var queuesEl = document.getElementById("cc-queues");
  var callbacksBody = document.querySelector("#cc-callbacks tbody");
  var myCalls = document.querySelector("#my-calls tbody");

  function say(text) {
    message.textContent = text;
  }

  function currentCall() {
    var pop = document.getElementById("pop");
    if (!pop || pop.dataset.state !== "talking") return null;
    return pop.dataset.linkedid || null;
  }

  function refreshOnCall() {
    onCall.hidden = currentCall() === null;
  }
  new MutationObserver(refreshOnCall).observe(area, { childList: true, subtree: true, attributes: true,
    attributeFilter: ["data-state", "data-linkedid"] });
  refreshOnCall();

  // The engine may answer on the socket before the HTTP reply arrives (a refusal is quick):
  // its answer is not overwritten by "sent".
  var answered = {};
  function sent(r) {
    if (r.status === 202 && r.data && answered[str(r.data.request_id)]) return;
    say(r.status === 202 ? t("cc.sent") : t("cc.failed", { error: str(r.data.message || r.data.error || r.status) }));
  }

  function act(action) {
    var linkedid = currentCall();
    if (!linkedid) return;
    if (action === "hangup") {
      api("POST", "/api/call/hangup", { linkedid: linkedid }).then(sent);
      return;
    }
    api("POST", "/api/call/transfer", { linkedid: linkedid, mode: action, kind: kind.value, target: target.value })
      .then(sent);
  }
  panel.querySelectorAll('[data-block="on-call"] [data-action]').forEach(function (b) {
    b.addEventListener("click", function () { act(b.dataset.action); });
  });

  // The seat's own outside call (click-to-call) has no pop: its hang-up button shows here.
  var outboundBtn = panel.querySelector('[data-action="hangup-outbound"]');
  var outboundCall = null;
  function setOutbound(linkedid) {
    outboundCall = linkedid;
    outboundBtn.hidden = !linkedid;
  }
  outboundBtn.addEventListener("click", function () {
    if (outboundCall) api("POST", "/api/call/hangup", { linkedid: outboundCall }).then(sent);
  });

  dialForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/api/call/dial", { number: dialForm.elements.number.value }).then(sent);
  });

  // The engine's answer to this seat's command (through the console's WebSocket).
  var myQueues = [];
  window.addEventListener("cc:message", function (ev) {
    var msg = ev.detail || {};
    if (msg.type === TYPES.CALLCONTROL) {
      if (msg.request_id) answered[str(msg.request_id)] = true;
      // A number the dial-out policy refused: the reason from the catalogue, not the engine's words.
      var why = msg.refused ? t("dialout." + str(msg.refused)) : str(msg.error);
      say(msg.ok ? t("cc.done." + str(msg.action)) : t("cc.failed", { error: why }));
      if (msg.action === "dial" && msg.ok) setOutbound(str(msg.linkedid || ""));
      if (msg.action === "hangup" && msg.ok && msg.linkedid === outboundCall) setOutbound(null);
    } else if (msg.type === TYPES.STATE && Array.isArray(msg.queues)) {
      myQueues = msg.queues.map(str);
      renderQueues();
    } else if (msg.type === TYPES.CLEAR) {
      setTimeout(decorateCalls, 2000);
    }
  });

  // Queues: assigned ones are always on; the others can be joined and left.
  var allQueues = [];
  function renderQueues() {
    queuesEl.textContent = "";
    allQueues.forEach(function (q) {
      var inQueue = myQueues.indexOf(q.name) >= 0;
      var b = document.createElement("button");
      b.type = "button";
      b.dataset.queue = q.name;
      b.dataset.in = inQueue ? "true" : "false";
      b.textContent = (q.title || q.name) + " · " + (inQueue ? t("cc.in_queue") : t("cc.out_of_queue"));
      b.disabled = q.static;
      b.title = q.static ? t("cc.assigned") : (inQueue ? t("cc.logout") : t("cc.login"));
      b.addEventListener("click", function () {
        api("POST", "/api/seat/queues", { queue: q.name, login: !inQueue }).then(sent);
      });
      queuesEl.appendChild(b);
    });
  }
  api("GET", "/api/seat/queues").then(function (r) {
    if (r.status === 200) {
      allQueues = r.data;
      renderQueues();
    }
  });

  // Callbacks waiting (oldest first), refreshed every 15 s.
  function loadCallbacks() {
    api("GET", "/api/callbacks").then(function (r) {
      if (r.status !== 200) return;
      callbacksBody.textContent = "";
      r.data.forEach(function (c) {
        var row = document.createElement("tr");
        var status = t("cc.cb." + str(c.status));
        if (c.reason) status += " · " + t("dialout." + str(c.reason));
        // A missed call (漏接) says so, and how many calls it merges.
        if (c.kind === "abandoned" || c.kind === "closed") {
          status = t("cc.cbkind." + c.kind, { n: String(Number(c.missed_count) || 1) }) + " · " + status;
        } else if (c.kind === "followup") {
          status = t("cc.cbkind.followup", { order: str(c.reference) }) + " · " + status;
          if (c.outcome === "no_reply" || c.outcome === "no_sms") status += " · " + t("cc.cbwhy." + c.outcome);
        }
        // The call back's own call record, on the item it called back.
        if (c.call) {
          status += " · " + t("cc.cb.call", {
            time: str(c.call.started_at).replace("T", " ").slice(11, 16),
            seat: str(c.call.seat) || str(c.seat) || "—",
            talk: (c.call.talk_s === null && c.call.duration_s === null) ? "—"
              : String(Math.round(Number(c.call.talk_s === null ? c.call.duration_s : c.call.talk_s) || 0))
          });
        }
        row.dataset.id = String(Number(c.id) || 0);
        row.dataset.status = str(c.status);
        row.dataset.kind = str(c.kind);
        if (c.call) row.dataset.call = str(c.call.linkedid);
        [str(c.requested_at).replace("T", " ").slice(0, 19), str(c.phone), window.ccI18n.queue(c.queue),
          status, String(Number(c.attempts) || 0)].forEach(function (text) {
          var td = document.createElement("td");
          td.textContent = text;
          row.appendChild(td);
        });
        // A task the automatic calls left: the seat marks it done once dealt with.
        if (c.status === "task") {
          var td = document.createElement("td");
          var done = document.createElement("button");
          done.type = "button";
          done.dataset.action = "task-done";
          done.textContent = t("cc.cb.finish");
          done.addEventListener("click", function () {
            api("POST", "/api/callbacks/" + String(Number(c.id) || 0) + "/done").then(loadCallbacks);
          });
          td.appendChild(done);
          row.appendChild(td);
        }
        callbacksBody.appendChild(row);
      });
    });
  }
  loadCallbacks();
  setInterval(loadCallbacks, 15000);

  // Recordings of the day's calls: play in the page, or download (both are audited).
  function decorateCalls() {
    if (!myCalls) return;
    myCalls.querySelectorAll("tr[data-linkedid]").forEach(function (row) {
      if (row.dataset.rec === "1") return;
      row.dataset.rec = "1";
      var linkedid = row.dataset.linkedid;
      if (!/^[0-9.]+$/.test(linkedid)) return;
      var td = document.createElement("td");
      var play = document.createElement("button");
      play.type = "button";
      play.textContent = t("cc.play");
      play.addEventListener("click", (function (cell, id, button) {
        return function () {
          var audio = document.createElement("audio");
          audio.controls = true;
          audio.src = "/api/recordings/" + id;
          audio.addEventListener("error", function () { cell.textContent = t("cc.no_recording"); });
          button.replaceWith(audio);
          audio.play().catch(function () { /* the controls are there */ });
        };
      })(td, linkedid, play));
      var dl = document.createElement("a");
      dl.href = "/api/recordings/" + linkedid + "?download=1";
      dl.textContent = t("cc.download");
      td.appendChild(play);
      td.appendChild(document.createTextNode(" "));
      td.appendChild(dl);
      row.appendChild(td);
    });
  }
  if (myCalls) new MutationObserver(decorateCalls).observe(myCalls, { childList: true });

  // Keyboard: Alt+H hang up (or complete an attended transfer), Alt+T blind, Alt+A attended
  // transfer, Alt+X the transfer target, Alt+D the number to call.
  document.addEventListener("keydown", function (ev) {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var key = ev.key.toLowerCase();
    if (key === "h" || key === "t" || key === "a") {
      if (!currentCall()) return;
      ev.preventDefault();
      act({ h: "hangup", t: "blind", a: "attended" }[key]);
    } else if (key === "x" && !onCall.hidden) {
      ev.preventDefault();
      target.focus();
    } else if (key === "d") {
      ev.preventDefault();
      dialForm.elements.number.focus();
    }
  });
})();
