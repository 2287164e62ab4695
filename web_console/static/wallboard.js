// Supervisor wallboard: queue and seat snapshots pushed by the engine (no polling).
// Seat names and reasons are data: written with textContent only.
(function () {
  "use strict";

  var board = document.getElementById("wallboard");
  var conn = document.getElementById("conn");
  if (!board || !conn) return;
  var t = window.ccI18n.t; // i18n.js
  var last = null;

  function cell(row, text, field) {
    var td = document.createElement("td");
    td.textContent = text;
    if (field) td.dataset.field = field;
    row.appendChild(td);
    return td;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  var pctFmt = new Intl.NumberFormat(board.dataset.locale || "zh-CN", {
    style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
  });
  var numFmt = new Intl.NumberFormat(board.dataset.locale || "zh-CN");
  function percent(v) {
    return v === null || v === undefined ? "—" : pctFmt.format(v);
  }

  var STATES = ["available", "ringing", "talking", "wrapup", "paused"];

  // Asterisk sends nothing when a seat's wrap-up ends: the board ends it itself.
  function seatState(seat, now) {
    if (seat.state === "wrapup" && now >= Number(seat.wrapup_until || 0)) return "available";
    return String(seat.state);
  }

  function seatSince(seat, now) {
    if (seat.state === "wrapup" && now >= Number(seat.wrapup_until || 0)) return Number(seat.wrapup_until);
    return Number(seat.since);
  }

  function render() {
    if (!last) return;
    var now = Date.now() / 1000;
    var perQueue = {};
    (last.seats || []).forEach(function (seat) {
      var state = seatState(seat, now);
      (seat.queues || []).forEach(function (q) {
        var c = perQueue[q] || (perQueue[q] = {});
        c[state] = (c[state] || 0) + 1;
      });
    });
    var qBody = document.querySelector("#queues tbody");
    var sBody = document.querySelector("#seats tbody");
    qBody.textContent = "";
    sBody.textContent = "";
    var queueName = window.ccI18n.queue; // the queue's id stays in data-queue; people read its name
    Object.keys(last.queues || {}).sort(function (a, b) {
      return queueName(a).localeCompare(queueName(b));
    }).forEach(function (name) {
      var q = last.queues[name];
      var row = document.createElement("tr");
      row.dataset.queue = name;
      cell(row, queueName(name), "queue");
      var alerts = last.alerts || { wait_s: 15, answered_rate: 0.95 };
      var waitAlert = Number(q.service_level_s || alerts.wait_s);
      cell(row, String(q.waiting), "waiting");
      var lw = cell(row, String(q.longest_wait_s), "longest-wait");
      if (q.waiting > 0 && q.longest_wait_s > waitAlert) {
        lw.className = q.longest_wait_s > 2 * waitAlert ? "alert" : "warn";
      }
      var counts = perQueue[name] || {};
      STATES.forEach(function (state) { cell(row, String(counts[state] || 0), "seats-" + state); });
      cell(row, numFmt.format(q.offered || 0), "offered");
      cell(row, numFmt.format(q.answered || 0), "answered");
      cell(row, numFmt.format(q.abandoned || 0), "abandoned");
      var ar = cell(row, percent(q.answered_rate), "answered-rate");
      if (q.answered_rate !== null && q.answered_rate !== undefined && q.answered_rate < alerts.answered_rate) {
        ar.className = q.answered_rate < alerts.answered_rate - 0.1 ? "alert" : "warn";
      }
      cell(row, percent(q.service_level), "service-level");
      qBody.appendChild(row);
    });
    (last.seats || []).forEach(function (seat) {
      var row = document.createElement("tr");
      row.dataset.ext = String(seat.ext);
      var state = seatState(seat, now);
      row.dataset.state = state;
      cell(row, String(seat.ext), "ext");
      cell(row, String(seat.name || ""), "name");
      cell(row, t("seatstate." + state), "state");
      var why = state === "unavailable" ? t("seatstate.no_phone_short") : "";
      if ((state === "ringing" || state === "talking") && seat.paused === true) {
        // Paused during the call: one state (the call's), the pause a note until it ends.
        why = seat.paused_reason ? t("seatstate.paused_after_call_reason", { reason: String(seat.paused_reason) })
          : t("seatstate.paused_after_call");
      }
      cell(row, state === "paused" ? String(seat.paused_reason || "") : why, "reason");
      cell(row, duration(now - seatSince(seat, now)), "since");
      cell(row, String(seat.calls_today || 0), "calls-today");
      sBody.appendChild(row);
    });
  }

  // Large-screen mode for the wall: ?wall=1 or the button; F toggles full screen.
  var wallBtn = document.getElementById("wall-mode");
  function setWall(on) {
    document.body.classList.toggle("wall-mode", on);
    if (wallBtn) wallBtn.setAttribute("aria-pressed", on ? "true" : "false");
  }
  if (/[?&]wall=1\b/.test(location.search)) setWall(true);
  if (wallBtn) {
    wallBtn.addEventListener("click", function () {
      var on = !document.body.classList.contains("wall-mode");
      setWall(on);
      if (on && document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(function () {});
    });
  }
  document.addEventListener("keydown", function (e) {
    if (e.target && /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
    if (e.key === "Escape" && document.body.classList.contains("wall-mode") && !document.fullscreenElement) setWall(false);
    if (e.key === "f" || e.key === "F") {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(function () {});
    }
  });

  // A burst of lookups of residents not linked to an account's work: newest first, the last 20.
  function lookupsAlert(msg) {
    var box = document.getElementById("lookups");
    var list = document.getElementById("lookups-list");
    if (!box || !list) return;
    var li = document.createElement("li");
    li.className = "alert";
    li.dataset.actor = String(msg.actor);
    var at = new Date(Number(msg.at) * 1000);
    li.textContent = at.toLocaleTimeString(board.dataset.locale || "zh-CN") + " " +
      t("wallboard.lookups_alert", { actor: String(msg.actor), n: Number(msg.lookups), minutes: Number(msg.window_min) });
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) list.removeChild(list.lastChild);
    box.hidden = false;
  }

  // The live board over the shared WebSocket client (cc.js): reconnected with backoff, kept alive.
  window.cc.socket({
    path: board.dataset.wsPath || "/ws/wallboard",
    kind: "wallboard",
    onMessage: function (msg) {
      if (msg.topic === "wallboard" && msg.type === window.cc.types.SNAPSHOT) { last = msg; render(); }
      if (msg.topic === "wallboard" && msg.type === window.cc.types.RESIDENT_LOOKUPS) lookupsAlert(msg);
    },
    onState: function (state) { conn.dataset.conn = state; }
  });
  setInterval(render, 1000);  // the "for" column keeps counting between snapshots

  // Missed calls waiting to be called back (漏接回拨), from the seats' callbacks list.
  var missedBody = document.querySelector("#missed tbody");
  function loadMissed() {
    if (!missedBody) return;
    window.cc.api("GET", "/api/callbacks").then(function (r) {
      if (r.status !== 200 || !Array.isArray(r.data)) return;
      missedBody.textContent = "";
      r.data.forEach(function (c) {
        if (c.kind !== "abandoned" && c.kind !== "closed") return;
        var row = document.createElement("tr");
        row.dataset.status = String(c.status);
        [String(c.requested_at).replace("T", " ").slice(0, 19), String(c.phone), window.ccI18n.queue(String(c.queue)),
          String(Number(c.missed_count) || 1), t("cc.cb." + String(c.status)),
          String(Number(c.attempts) || 0)].forEach(function (text) { cell(row, text, ""); });
        missedBody.appendChild(row);
      });
    });
  }
  loadMissed();
  setInterval(loadMissed, 15000);
})();
