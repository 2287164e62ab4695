// Seat console: receives the screen pops of this seat's extension over a WebSocket.
// Every piece of call data is untrusted (the caller-ID name comes from the SIP caller) and is
// written with textContent or setAttribute only, never as HTML.
(function () {
  "use strict";

  var area = document.getElementById("pop-area");
  var conn = document.getElementById("conn");
  var tpl = document.getElementById("pop-template");
  if (!area || !conn || !tpl) return;

  var t = window.ccI18n.t; // i18n.js
  var str = window.ccI18n.str;
  var queueName = window.ccI18n.queue; // ids in the messages, names on the page
  var numberName = window.ccI18n.number;
  var TYPES = window.cc.types; // cc.js: the message types of web_console/protocol.py
  var locale = area.dataset.locale || "zh-CN";
  var ext = area.dataset.ext || "";
  var myTopic = "seat." + ext;

  // ---- dates and times, shown in the user's locale ----
  var dateTimeFmt = new Intl.DateTimeFormat(locale, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false
  });
  var timeFmt = new Intl.DateTimeFormat(locale, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });
  var ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

  // ISO 8601 text to a Date. Without an offset the time is the server's local wall time, which
  // is taken as the browser's local time (the hotline and its seats share one time zone).
  function parseTime(v) {
    if (typeof v !== "string") return null;
    var m = ISO_RE.exec(v.trim());
    if (!m) return null;
    var ms = m[7] ? Number((m[7] + "00").slice(0, 3)) : 0;
    var d;
    if (m[8]) {
      var tz = m[8] === "Z" ? "Z" : m[8].replace(/^([+-]\d{2}):?(\d{2})$/, "$1:$2");
      d = new Date(m[1] + "-" + m[2] + "-" + m[3] + "T" + (m[4] || "00") + ":" + (m[5] || "00") +
        ":" + (m[6] || "00") + "." + String(ms).padStart(3, "0") + tz);
    } else {
      d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] || 0),
        Number(m[5] || 0), Number(m[6] || 0), ms);
    }
    return isNaN(d.getTime()) ? null : d;
  }

  function fmtDateTime(v) {
    var d = parseTime(v);
    return d ? dateTimeFmt.format(d) : str(v);
  }

  function fmtTime(v) {
    var d = parseTime(v);
    return d ? timeFmt.format(d) : str(v);
  }

  function fmtDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = (h > 0 && m < 10 ? "0" : "") + m;
    return (h > 0 ? h + ":" : "") + mm + ":" + (sec < 10 ? "0" : "") + sec;
  }

  // ---- connection indicator ----
  function setConn(state) {
    conn.dataset.conn = state;
    conn.textContent = t("conn." + state);
  }

  // ---- the pop ----
  var timerId = null;
  var timerStart = 0;

  function field(el, name) {
    return el.querySelector('[data-field="' + name + '"]');
  }

  function setText(el, name, value) {
    var f = field(el, name);
    if (f) f.textContent = str(value);
    return f;
  }

  function show(node, visible) {
    if (node) node.hidden = !visible;
  }

  function showRows(el, name, visible) {
    var rows = el.querySelectorAll('[data-row="' + name + '"]');
    for (var i = 0; i < rows.length; i++) rows[i].hidden = !visible;
  }

  function idleNotice() {
    return document.getElementById("idle");
  }

  // When the event began, in this browser's clock: the server's sent_at tells how long before
  // sending the event had been going, which avoids trusting the browser's clock against the
  // server's. Without a usable sent_at the timer counts from the message's arrival.
  function startOf(iso, msg) {
    var now = Date.now();
    var base = parseTime(iso);
    if (base && typeof msg.sent_at === "number" && isFinite(msg.sent_at)) {
      var elapsed = msg.sent_at * 1000 - base.getTime();
      if (elapsed >= 0 && elapsed < 12 * 3600 * 1000) return now - elapsed;
    }
    return now;
  }

  function tick() {
    var pop = document.getElementById("pop");
    if (!pop) {
      stopTimer();
      return;
    }
    setText(pop, "timer", fmtDuration(Date.now() - timerStart));
  }

  function startTimer(start) {
    timerStart = start;
    tick();
    if (timerId === null) timerId = window.setInterval(tick, 1000);
  }

  function stopTimer() {
    if (timerId !== null) window.clearInterval(timerId);
    timerId = null;
  }

  function outcomeLabel(outcome) {
    var key = "outcome." + str(outcome);
    var label = t(key);
    return label === key ? str(outcome) : label;
  }

  function describeLastCall(c) {
    if (!c || typeof c !== "object") return t("none");
    var parts = [fmtDateTime(c.at)];
    if (c.outcome) parts.push(outcomeLabel(c.outcome));
    if (c.seat) parts.push(t("seat", { seat: c.seat }));
    return parts.filter(Boolean).join("  ");
  }

  function describeLastOrder(o) {
    if (!o || typeof o !== "object") return t("none");
    var head = [str(o.number), str(o.type), str(o.status), fmtDateTime(o.created_at)]
      .filter(Boolean).join("  ");
    return o.summary ? head + "\n" + str(o.summary) : head;
  }

  function fillResident(pop, r) {
    var known = r !== null && typeof r === "object";
    show(pop.querySelector('[data-block="resident"]'), known);
    show(pop.querySelector('[data-block="unknown"]'), !known);
    pop.dataset.resident = known ? "known" : "unknown";
    if (!known) return;
    setText(pop, "resident-name", r.name);
    setText(pop, "resident-age",
      typeof r.age === "number" && isFinite(r.age) ? t("age", { age: r.age }) : "");
    show(field(pop, "badge-elderly"), r.elderly === true);
    show(field(pop, "badge-alone"), r.lives_alone === true);
    var community = str(r.community), grid = str(r.grid), jurisdiction = str(r.jurisdiction);
    setText(pop, "resident-community", community);
    setText(pop, "resident-grid", grid);
    setText(pop, "resident-jurisdiction", jurisdiction);
    var seps = pop.querySelectorAll(".resident-place .sep");
    if (seps.length === 2) {
      show(seps[0], community !== "" && (grid !== "" || jurisdiction !== ""));
      show(seps[1], grid !== "" && jurisdiction !== "");
    }
    setText(pop, "resident-address", r.address);
    show(field(pop, "resident-address").parentNode, str(r.address) !== "");
    setText(pop, "resident-id", r.id_number_masked);
    show(field(pop, "resident-id").parentNode, str(r.id_number_masked) !== "");
    setText(pop, "resident-emergency", r.emergency_contact);
    showRows(pop, "emergency", str(r.emergency_contact) !== "");
    var reveal = pop.querySelector('[data-action="reveal-id"]');
    if (reveal && reveal.dataset.residentId !== String(r.id)) {
      reveal.dataset.residentId = String(r.id);
      reveal.onclick = function () {
        api("GET", "/api/residents/" + Number(r.id) + "/identity").then(function (res) {
          if (res.status === 200) setText(pop, "resident-id", res.data.id_number);
        });
      };
    }
  }

  function fillPop(pop, msg) {
    var state = msg.state === "talking" ? "talking" : "ringing";
    var source = msg.source === "12345" ? "12345" : "carrier";
    var previousState = pop.dataset.state;
    pop.dataset.state = state;
    pop.dataset.source = source;
    pop.dataset.linkedid = str(msg.linkedid);

    setText(pop, "state", t("state." + state));
    showPauseNote(pop);
    setText(pop, "source", t("source." + source));

    var caller = setText(pop, "caller", msg.caller_display || msg.caller);
    if (caller) caller.setAttribute("title", str(msg.caller));
    setText(pop, "caller-name", msg.caller_name);
    showRows(pop, "caller-name", str(msg.caller_name) !== "");

    fillResident(pop, msg.resident);

    // The voice menu choice (key, label, suggested order category)
    var ivr = str(msg.ivr_choice);
    show(pop.querySelector('[data-block="ivr"]'), ivr !== "");
    setText(pop, "ivr-choice", ivr === "" ? "" :
      [/^[0-9]$/.test(ivr) ? ivr : "", str(msg.ivr_label), str(msg.ivr_category)].filter(Boolean).join(" · "));
    show(pop.querySelector('[data-block="12345"]'), source === "12345");
    setText(pop, "order-12345", msg.order_12345);
    setText(pop, "summary-12345", msg.summary_12345);

    var h = msg.history && typeof msg.history === "object" ? msg.history : {};
    setText(pop, "calls-count", t("calls", { n: Number(h.calls) || 0 }));
    setText(pop, "last-call", describeLastCall(h.last_call));
    setText(pop, "orders-count", t("orders", { n: Number(h.orders) || 0 }));
    setText(pop, "last-order", describeLastOrder(h.last_order));

    var did = setText(pop, "did", numberName(msg.did));
    if (did) did.setAttribute("title", str(msg.did));
    var queue = setText(pop, "queue", queueName(msg.queue));
    if (queue) queue.setAttribute("title", str(msg.queue));
    setText(pop, "ringing-at", fmtTime(msg.ringing_at));
    setText(pop, "answered-at", msg.answered_at ? fmtTime(msg.answered_at) : "");
    showRows(pop, "answered-at", Boolean(msg.answered_at));

    if (state !== previousState || timerId === null) {
      startTimer(startOf(state === "talking" ? msg.answered_at : msg.ringing_at, msg));
    }
  }

  function onPop(msg) {
    if (typeof msg.linkedid !== "string" && typeof msg.linkedid !== "number") return;
    var linkedid = String(msg.linkedid);
    var pop = document.getElementById("pop");
    if (pop && pop.dataset.linkedid !== linkedid) {
      pop.remove();
      stopTimer();
      pop = null;
    }
    if (!pop) {
      pop = tpl.content.firstElementChild.cloneNode(true);
      pop.dataset.state = "";
      area.appendChild(pop);
    }
    fillPop(pop, msg);
    if (pop.dataset.resident === "unknown") setUpUnknown(pop, msg);
    show(idleNotice(), false);
    // dispatch: the order form and the resident's archive (orders_console.js) follow the pop.
    document.dispatchEvent(new CustomEvent("cc:pop", { detail: msg }));
    syncOnCall();
  }

  function onClear(msg) {
    // A call ended somewhere in this seat's day: its record is written a moment later.
    setTimeout(loadMyCalls, 1500);
    var pop = document.getElementById("pop");
    if (!pop || pop.dataset.linkedid !== str(msg.linkedid)) return;
    pop.remove();
    stopTimer();
    show(idleNotice(), true);
    syncOnCall();
  }

  // ---- the seat's own state and pause (Asterisk is the truth: the state comes back by event) ----
  var stateEl = document.getElementById("seat-state");
  var reasonEl = document.getElementById("seat-state-reason");
  var pauseBtn = document.getElementById("pause-toggle");
  var reasonSel = document.getElementById("pause-reason");

  var stateSince = 0;
  var forEl = document.getElementById("seat-state-for");
  var queuesEl = document.getElementById("my-queues");
  var myCalls = document.querySelector("#my-calls tbody");

  var wrapupUntil = 0;
  function tickState() {
    // Asterisk sends nothing when wrap-up ends: the page turns it into "available" itself.
    if (wrapupUntil && Date.now() / 1000 >= wrapupUntil && stateEl && stateEl.dataset.state === "wrapup") {
      stateEl.dataset.state = "available";
      stateEl.textContent = t("seatstate.available");
      stateSince = wrapupUntil;
      wrapupUntil = 0;
    }
    if (forEl && stateSince) forEl.textContent = fmtDuration(Date.now() - stateSince * 1000);
  }
  setInterval(tickState, 1000);

  // The callers waiting in the seat's queues, by the queues' names: the total and the queues
  // with callers in the top bar (shortened if need be), every queue in the tooltip.
  function onQueues(msg) {
    if (!queuesEl || !msg.waiting || typeof msg.waiting !== "object") return;
    var total = 0;
    var all = [];
    var busy = [];
    Object.keys(msg.waiting).map(function (q) {
      return { name: queueName(q), n: Number(msg.waiting[q]) || 0 };
    }).sort(function (a, b) { return a.name.localeCompare(b.name); }).forEach(function (q) {
      total += q.n;
      all.push(t("queue_waiting", { queue: q.name, n: q.n }));
      if (q.n > 0) busy.push(q.name + " " + q.n);
    });
    queuesEl.textContent = t("queues_waiting_total", { n: total }) + (busy.length ? " · " + busy.join(" · ") : "");
    queuesEl.title = all.join("\n");
    queuesEl.dataset.waiting = String(total);
  }

  // While a call rings or talks on this seat its pop shows the seat's state (one place, one clock).
  var seatStatusEl = document.getElementById("seat-status");
  function syncOnCall() {
    if (!seatStatusEl || !stateEl) return;
    var pop = document.getElementById("pop");
    var state = stateEl.dataset.state;
    seatStatusEl.dataset.oncall = pop && (state === "ringing" || state === "talking") ? "true" : "false";
  }

  function loadMyCalls() {
    if (!myCalls) return;
    api("GET", "/api/my/calls").then(function (r) {
      myCalls.textContent = "";
      (r.data || []).forEach(function (c) {
        var row = document.createElement("tr");
        row.dataset.linkedid = str(c.linkedid);
        [fmtTime(c.started_at), str(c.caller), str(c.resident),
         c.wait_s === null ? "" : String(Math.round(c.wait_s)),
         c.talk_s === null ? "" : String(Math.round(c.talk_s))].forEach(function (text) {
          var td = document.createElement("td");
          td.textContent = text;
          row.appendChild(td);
        });
        myCalls.appendChild(row);
      });
    });
  }

  var pauseNote = "";
  function pausedAfterCall(reason) {
    return str(reason) ? t("seatstate.paused_after_call_reason", { reason: str(reason) }) : t("seatstate.paused_after_call");
  }
  function showPauseNote(pop) {
    var note = setText(pop, "pause-note", pauseNote);
    if (note) show(note, pauseNote !== "");
  }

  function onState(msg) {
    if (!stateEl) return;
    stateSince = Number(msg.since) || 0;
    var state = str(msg.state);
    wrapupUntil = state === "wrapup" ? Number(msg.wrapup_until) || 0 : 0;
    stateEl.dataset.state = state;
    stateEl.textContent = t("seatstate." + state);
    tickState();
    // Unavailable means no phone of the seat is registered: say so, and what to do. A pause
    // asked for during a call is a note on the call's state (the pop's), not a second state.
    var paused = state === "paused" || msg.paused === true;
    pauseNote = paused && (state === "ringing" || state === "talking") ? pausedAfterCall(msg.paused_reason) : "";
    if (state === "unavailable") reasonEl.textContent = t("seatstate.no_phone");
    else reasonEl.textContent = state === "paused" ? str(msg.paused_reason) : pauseNote;
    var pop = document.getElementById("pop");
    if (pop) showPauseNote(pop);
    pauseBtn.dataset.paused = paused ? "true" : "false";
    pauseBtn.textContent = paused ? pauseBtn.dataset.labelResume : pauseBtn.dataset.labelPause;
    reasonSel.disabled = paused;
    syncOnCall();
  }

  if (pauseBtn) {
    pauseBtn.addEventListener("click", function () {
      var pausing = pauseBtn.dataset.paused !== "true";
      pauseBtn.disabled = true;
      api("POST", "/api/seat/pause", { paused: pausing, reason: pausing ? reasonSel.value : "" }).then(function (r) {
        if (r.status !== 202) window.alert(t("pause_failed"));
      }, function () {
        window.alert(t("pause_failed"));
      }).then(function () {
        pauseBtn.disabled = false;
      });
    });
  }

  // ---- an unknown caller: register, or link the number to a resident on file ----
  var communities = null;

  var api = window.cc.api; // cc.js

  function registerMessage(pop, text) {
    setText(pop, "register-message", text);
  }

  function setUpUnknown(pop, msg) {
    if (pop.dataset.unknownReady === "1") return;
    pop.dataset.unknownReady = "1";
    var reg = pop.querySelector('[data-form="register"]');
    var link = pop.querySelector('[data-form="link"]');
    var select = reg.querySelector('select[name="community_id"]');
    (communities ? Promise.resolve(communities) : api("GET", "/api/communities").then(function (r) {
      communities = r.data;
      return communities;
    })).then(function (list) {
      list.forEach(function (c) {
        var o = document.createElement("option");
        o.value = String(c.id);
        o.textContent = str(c.jurisdiction) + " · " + str(c.name);
        select.appendChild(o);
      });
    });
    function outcome(r, doneKey) {
      if (r.status === 200 || r.status === 201) registerMessage(pop, t(doneKey, { name: str(r.data.name) }));
      else if (r.status === 409 && r.data.existing) registerMessage(pop, t("register.exists", { name: str(r.data.existing.name) }));
      else registerMessage(pop, t("register.failed", { error: str(r.data.message || r.data.error || r.status) }));
    }
    reg.addEventListener("submit", function (ev) {
      ev.preventDefault();
      api("POST", "/api/residents", {
        linkedid: pop.dataset.linkedid,
        name: reg.elements.name.value,
        phone: str(msg.caller),
        community_id: select.value ? Number(select.value) : null,
        address: reg.elements.address.value
      }).then(function (r) { outcome(r, "register.done"); });
    });
    link.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var list = field(pop, "matches");
      list.textContent = "";
      api("GET", "/api/residents?q=" + encodeURIComponent(link.elements.q.value)).then(function (r) {
        if (!r.data.length) registerMessage(pop, t("register.none"));
        r.data.forEach(function (res) {
          var li = document.createElement("li");
          li.textContent = str(res.name) + " " + str(res.phone) + " ";
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = t("register.link");
          b.addEventListener("click", function () {
            api("POST", "/api/residents/" + Number(res.id) + "/phones",
                { linkedid: pop.dataset.linkedid, phone: str(msg.caller) })
              .then(function (r2) { outcome(r2, "register.linked"); });
          });
          li.appendChild(b);
          list.appendChild(li);
        });
      });
    });
  }

  // ---- keyboard: the common actions without the mouse ----
  // Alt+P pause / resume, Alt+N the new-resident name, Alt+F find a resident, Alt+I full ID number.
  document.addEventListener("keydown", function (ev) {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var key = ev.key.toLowerCase();
    var target = null;
    if (key === "p") target = pauseBtn;
    else if (key === "n") target = document.querySelector('#pop [data-form="register"] input[name="name"]');
    else if (key === "f") target = document.querySelector('#pop [data-form="link"] input[name="q"]');
    else if (key === "i") target = document.querySelector('#pop [data-action="reveal-id"]');
    if (!target || target.offsetParent === null) return;
    ev.preventDefault();
    if (target.tagName === "INPUT") target.focus();
    else target.click();
  });

  function onMessage(msg) {
    if (!msg || typeof msg !== "object" || msg.topic !== myTopic) return;
    try {
      if (msg.type === TYPES.POP) onPop(msg);
      else if (msg.type === TYPES.CLEAR) onClear(msg);
      else if (msg.type === TYPES.STATE) onState(msg);
      else if (msg.type === TYPES.QUEUES) onQueues(msg);
      // Call-control outcomes and seat state for callcontrol.js
      if (msg.type === TYPES.CALLCONTROL || msg.type === TYPES.STATE || msg.type === TYPES.CLEAR) {
        window.dispatchEvent(new CustomEvent("cc:message", { detail: msg }));
      }
    } catch (e) {
      if (window.console) window.console.error("console: bad message", e);
    }
  }

  // ---- the WebSocket (cc.js reconnects it) ----
  if (!ext) {
    setConn("no_extension");
  } else {
    window.cc.socket({
      path: area.dataset.wsPath || "/ws/console",
      kind: "console",
      onMessage: onMessage,
      onReady: function () { loadMyCalls(); },
      onState: setConn
    });
  }
})();
