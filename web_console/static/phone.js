// The browser phone of a seat whose account says phone = browser (load after i18n.js and the
// vendored JsSIP). Its SIP account comes from /api/phone over the session (never in the page);
// SIP travels over /sip on the console's own origin (web_console/softphone.py relays it to
// Asterisk). One tab per seat holds the registration (Web Locks); the other tabs show its state
// and can answer or hang up through a BroadcastChannel.
//
// Traps avoided on purpose: no STUN/TURN servers (a LAN needs none, and gathering against an
// unreachable STUN server delays every answer by seconds), ICE gathering cut short once the host
// candidates are in, rtcp-mux required (Asterisk's webrtc=yes), remote audio played from the
// track's own stream (no one-way audio from a detached element).
(function () {
  "use strict";

  var root = document.getElementById("phone");
  if (!root) return;
  var t = window.ccI18n.t;
  var ext = root.dataset.ext || "";
  var $ = function (sel) { return root.querySelector(sel); };
  var statusEl = document.getElementById("phone-status");
  var audio = $("#phone-audio");
  var els = {
    caller: $('[data-field="phone-caller"]'),
    callState: $('[data-field="phone-call-state"]'),
    answer: $('[data-phone="answer"]'),
    hangup: $('[data-phone="hangup"]'),
    mute: $('[data-phone="mute"]'),
    hold: $('[data-phone="hold"]'),
    keypad: $('[data-field="phone-keypad"]'),
    autoAnswer: $('[data-phone="auto-answer"]'),
    mic: $('[data-phone="mic"]'),
    speaker: $('[data-phone="speaker"]'),
    level: $('[data-field="phone-level"]'),
    notify: $('[data-phone="notify"]')
  };
  var ICE_GATHER_MS = 150; // after the first candidate: host candidates come within a few ms
  var PC_CONFIG = { iceServers: [], rtcpMuxPolicy: "require", bundlePolicy: "max-bundle" };
  var AUTO_KEY = "cc.phone.autoAnswer." + ext;
  var MIC_KEY = "cc.phone.mic." + ext;
  var SPEAKER_KEY = "cc.phone.speaker." + ext;
  var baseTitle = document.title;

  var ua = null;
  var session = null;
  var registered = false;
  var leader = false;
  var muted = false;
  var held = false;
  var callState = "idle"; // idle | ringing | talking
  var timings = { ringingAt: 0, acceptedAt: 0, firstAudioAt: 0 };
  var registeredAt = 0; // ms after the page started loading: the first registration
  // Click-to-call rings the seat's own phone first: the call the seat just asked for is answered
  // without a second click (until this time, on performance.now()'s clock).
  var ownDialUntil = 0;
  var OWN_DIAL_MS = 15000;
  var channel = "BroadcastChannel" in window ? new BroadcastChannel("cc-phone-" + ext) : null;

  // --- status ------------------------------------------------------------------------------
  function showStatus(key) {
    if (!statusEl) return;
    statusEl.dataset.phone = key;
    statusEl.textContent = t("phone.status." + key);
    statusEl.title = statusEl.textContent; // the pill may be shortened
    if (leader && channel) channel.postMessage({ type: "status", status: key, call: callState });
  }
  function showCall() {
    root.dataset.call = callState;
    els.callState.textContent = callState === "idle" ? "" : t("phone.call." + callState);
    els.answer.hidden = callState !== "ringing";
    els.hangup.hidden = callState === "idle";
    els.mute.hidden = els.hold.hidden = els.keypad.hidden = callState !== "talking";
    els.mute.setAttribute("aria-pressed", String(muted));
    els.mute.textContent = t(muted ? "phone.unmute" : "phone.mute");
    els.hold.setAttribute("aria-pressed", String(held));
    els.hold.textContent = t(held ? "phone.unhold" : "phone.hold");
    if (callState === "idle") els.caller.textContent = "";
    if (leader && channel) channel.postMessage({ type: "status", status: statusEl.dataset.phone, call: callState });
  }

  // --- ringing: tone, tab title, desktop notification ----------------------------------------
  var ringCtx = null;
  var ringTimer = null;
  var titleTimer = null;
  var notice = null;
  function tone(freqs, ms) {
    try {
      ringCtx = ringCtx || new (window.AudioContext || window.webkitAudioContext)();
      var gain = ringCtx.createGain();
      gain.gain.value = 0.15;
      gain.connect(ringCtx.destination);
      freqs.forEach(function (f) {
        var osc = ringCtx.createOscillator();
        osc.frequency.value = f;
        osc.connect(gain);
        osc.start();
        osc.stop(ringCtx.currentTime + ms / 1000);
      });
    } catch (e) { /* no audio output: the title and the notification still ring */ }
  }
  // Browsers start an AudioContext suspended until the page is used: the first click or key in
  // the console unlocks the ring tone (the tab title and the notification ring regardless).
  function unlockAudio() {
    try {
      ringCtx = ringCtx || new (window.AudioContext || window.webkitAudioContext)();
      if (ringCtx.state === "suspended") ringCtx.resume();
    } catch (e) { /* no audio output */ }
  }
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, unlockAudio, { passive: true });
  });
  function startRinging(caller) {
    stopRinging();
    tone([440, 480], 1000);
    ringTimer = setInterval(function () { tone([440, 480], 1000); }, 3000);
    var on = false;
    titleTimer = setInterval(function () {
      on = !on;
      document.title = on ? "☎ " + t("phone.incoming") + " " + caller : baseTitle;
    }, 700);
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      try { notice = new Notification(t("phone.incoming"), { body: caller, tag: "cc-phone-" + ext }); } catch (e) { notice = null; }
    }
  }
  function stopRinging() {
    clearInterval(ringTimer);
    clearInterval(titleTimer);
    ringTimer = titleTimer = null;
    document.title = baseTitle;
    if (notice) { notice.close(); notice = null; }
  }

  // --- level meter -------------------------------------------------------------------------
  var meterTimer = null;
  function startMeter(stream) {
    stopMeter();
    try {
      ringCtx = ringCtx || new (window.AudioContext || window.webkitAudioContext)();
      var source = ringCtx.createMediaStreamSource(stream);
      var analyser = ringCtx.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      var data = new Uint8Array(analyser.fftSize);
      meterTimer = setInterval(function () {
        analyser.getByteTimeDomainData(data);
        var peak = 0;
        for (var i = 0; i < data.length; i++) peak = Math.max(peak, Math.abs(data[i] - 128));
        els.level.value = muted ? 0 : Math.min(1, peak / 128);
      }, 100);
    } catch (e) { /* the meter is a help, not a need */ }
  }
  function stopMeter() {
    clearInterval(meterTimer);
    meterTimer = null;
    els.level.value = 0;
  }

  // --- devices -----------------------------------------------------------------------------
  function fillDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    navigator.mediaDevices.enumerateDevices().then(function (devices) {
      [[els.mic, "audioinput", MIC_KEY], [els.speaker, "audiooutput", SPEAKER_KEY]].forEach(function (d) {
        var select = d[0];
        var chosen = localStorage.getItem(d[2]) || "";
        select.replaceChildren();
        var def = document.createElement("option");
        def.value = "";
        def.textContent = t("phone.device_default");
        select.appendChild(def);
        devices.filter(function (x) { return x.kind === d[1]; }).forEach(function (x, i) {
          var o = document.createElement("option");
          o.value = x.deviceId;
          o.textContent = x.label || t("phone.device_n", { n: i + 1 });
          o.selected = x.deviceId === chosen;
          select.appendChild(o);
        });
      });
    });
  }
  function micConstraints() {
    var id = localStorage.getItem(MIC_KEY);
    return { audio: id ? { deviceId: { exact: id } } : true, video: false };
  }
  function applySpeaker() {
    var id = localStorage.getItem(SPEAKER_KEY) || "";
    if (audio.setSinkId) audio.setSinkId(id).catch(function () { /* device gone: default */ });
  }

  // --- calls -------------------------------------------------------------------------------
  function callerOf(s) {
    var id = s.remote_identity;
    var name = id && id.display_name ? id.display_name + " " : "";
    return name + (id && id.uri ? id.uri.user : "");
  }
  function bindMedia(s) {
    s.on("peerconnection", function (ev) {
      ev.peerconnection.addEventListener("track", function (te) {
        audio.srcObject = te.streams && te.streams[0] ? te.streams[0] : new MediaStream([te.track]);
        applySpeaker();
        audio.play().catch(function () { /* autoplay policy: the answer click allows it */ });
      });
    });
    var gatherTimer = null;
    s.on("icecandidate", function (ev) {
      // Answer with the host candidates gathered so far instead of waiting for gathering to end.
      if (!gatherTimer) gatherTimer = setTimeout(ev.ready, ICE_GATHER_MS);
    });
  }
  // When the first RTP packet arrives after the answer (getStats every 10 ms, for 10 s at most):
  // the answer-to-audio time the benchmark reports, and a one-way-audio clue in the console.
  function watchFirstAudio(s) {
    var until = performance.now() + 10000;
    (function poll() {
      if (session !== s || !s.connection || performance.now() > until) return;
      s.connection.getStats().then(function (report) {
        var got = 0;
        report.forEach(function (r) {
          if (r.type === "inbound-rtp" && r.kind === "audio") got += r.packetsReceived || 0;
        });
        if (got > 0) timings.firstAudioAt = performance.now();
        else setTimeout(poll, 10);
      });
    })();
  }
  function onSession(ev) {
    var s = ev.session;
    if (ev.originator !== "remote") return;
    if (session) {
      s.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    session = s;
    muted = held = false;
    callState = "ringing";
    timings = { ringingAt: performance.now(), acceptedAt: 0, firstAudioAt: 0 };
    var caller = callerOf(s);
    els.caller.textContent = caller;
    bindMedia(s);
    s.on("accepted", function () {
      timings.acceptedAt = performance.now();
      watchFirstAudio(s);
      callState = "talking";
      stopRinging();
      var sender = s.connection && s.connection.getSenders()[0];
      if (sender && sender.track) startMeter(new MediaStream([sender.track]));
      showCall();
    });
    s.on("hold", function () { held = true; showCall(); });
    s.on("unhold", function () { held = false; showCall(); });
    var ended = function () {
      if (session !== s) return;
      session = null;
      callState = "idle";
      muted = held = false;
      stopRinging();
      stopMeter();
      audio.srcObject = null;
      showCall();
    };
    s.on("ended", ended);
    s.on("failed", ended);
    showCall();
    var ownDial = performance.now() < ownDialUntil;
    ownDialUntil = 0;
    if (els.autoAnswer.checked || ownDial) {
      tone([880], 150); // a short beep: the seat hears that a call was put through
      setTimeout(answer, 300);
    } else {
      startRinging(caller);
    }
  }
  function answer() {
    if (!session || callState !== "ringing") return;
    stopRinging();
    session.answer({ mediaConstraints: micConstraints(), pcConfig: PC_CONFIG });
  }
  function hangup() {
    if (session) session.terminate();
  }
  function toggleMute() {
    if (!session || callState !== "talking") return;
    if (muted) session.unmute({ audio: true }); else session.mute({ audio: true });
    muted = !muted;
    showCall();
  }
  function toggleHold() {
    if (!session || callState !== "talking") return;
    if (held) session.unhold(); else session.hold();
  }
  function dtmf(key) {
    if (session && callState === "talking" && /^[0-9*#]$/.test(key)) {
      session.sendDTMF(key, { transportType: "RFC2833", duration: 160 });
    }
  }

  function command(cmd, arg) {
    if (!leader) {
      if (channel) channel.postMessage({ type: "command", cmd: cmd, arg: arg });
      return;
    }
    if (cmd === "answer") answer();
    else if (cmd === "hangup") hangup();
    else if (cmd === "mute") toggleMute();
    else if (cmd === "hold") toggleHold();
    else if (cmd === "dtmf") dtmf(arg);
  }

  // --- the user agent ----------------------------------------------------------------------
  function start(cred) {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new window.JsSIP.WebSocketInterface(proto + "//" + window.location.host + cred.ws_path);
    var config = {
      sockets: [socket],
      uri: cred.uri,
      authorization_user: cred.authorization_user,
      display_name: cred.display_name,
      register: true,
      register_expires: 120,
      session_timers: false,
      // The relay closes when Asterisk restarts: reconnect soon and register again by itself.
      connection_recovery_min_interval: 1,
      connection_recovery_max_interval: 5,
      user_agent: "callcenter-console"
    };
    // Either the password, or only its digest (HA1 = MD5(user:realm:password)) and the realm:
    // Asterisk's challenge is answered the same way, and the password itself need not exist.
    if (cred.ha1) {
      config.ha1 = cred.ha1;
      config.realm = cred.realm;
    } else {
      config.password = cred.password;
    }
    ua = new window.JsSIP.UA(config);
    ua.on("connecting", function () { if (!registered) showStatus("connecting"); });
    ua.on("registered", function () {
      if (!registeredAt) registeredAt = performance.now();
      registered = true;
      showStatus("registered");
    });
    ua.on("unregistered", function () { registered = false; showStatus("unregistered"); });
    ua.on("registrationFailed", function () { registered = false; showStatus("failed"); });
    ua.on("disconnected", function () { registered = false; showStatus("offline"); });
    ua.on("newRTCSession", onSession);
    ua.start();
  }

  function becomeLeader() {
    leader = true;
    showStatus("connecting");
    fetch("/api/phone", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (cred) {
        if (!cred || !cred.enabled) {
          showStatus("disabled");
          return;
        }
        start(cred);
      })
      .catch(function () { showStatus("failed"); });
    return new Promise(function () { /* held for the tab's life */ });
  }

  if (channel) {
    channel.onmessage = function (ev) {
      var m = ev.data || {};
      if (leader && m.type === "command") command(m.cmd, m.arg);
      if (!leader && m.type === "status") {
        if (statusEl) {
          statusEl.dataset.phone = m.status;
          statusEl.textContent = t("phone.status." + m.status) + " · " + t("phone.other_tab");
        }
        callState = m.call || "idle";
        showCall();
      }
      if (leader && m.type === "hello") showCall();
    };
  }

  // --- click-to-call: the console's dial form and the engine's answer (callcontrol.js) --------
  var dialForm = document.querySelector('[data-form="dial"]');
  if (dialForm) {
    dialForm.addEventListener("submit", function () { ownDialUntil = performance.now() + OWN_DIAL_MS; });
  }
  window.addEventListener("cc:message", function (ev) {
    var msg = ev.detail || {};
    var types = (window.cc && window.cc.types) || {};
    if (msg.type === types.CALLCONTROL && msg.action === "dial" && !msg.ok) ownDialUntil = 0;
  });

  // --- controls ----------------------------------------------------------------------------
  els.answer.addEventListener("click", function () { command("answer"); });
  els.hangup.addEventListener("click", function () { command("hangup"); });
  els.mute.addEventListener("click", function () { command("mute"); });
  els.hold.addEventListener("click", function () { command("hold"); });
  els.keypad.querySelectorAll("[data-key]").forEach(function (b) {
    b.addEventListener("click", function () { command("dtmf", b.dataset.key); });
  });
  els.autoAnswer.checked = localStorage.getItem(AUTO_KEY) === "1";
  els.autoAnswer.addEventListener("change", function () {
    localStorage.setItem(AUTO_KEY, els.autoAnswer.checked ? "1" : "0");
  });
  els.mic.addEventListener("change", function () { localStorage.setItem(MIC_KEY, els.mic.value); });
  els.speaker.addEventListener("change", function () {
    localStorage.setItem(SPEAKER_KEY, els.speaker.value);
    applySpeaker();
  });
  if (els.notify) {
    els.notify.hidden = !("Notification" in window) || Notification.permission !== "default";
    els.notify.addEventListener("click", function () {
      Notification.requestPermission().then(function () { els.notify.hidden = true; });
    });
  }
  if (navigator.mediaDevices) {
    navigator.mediaDevices.addEventListener("devicechange", fillDevices);
    fillDevices();
  }
  showCall();

  if (navigator.locks && navigator.locks.request) {
    showStatus("waiting");
    navigator.locks.request("cc-phone-" + ext, becomeLeader);
    if (channel) channel.postMessage({ type: "hello" });
  } else {
    becomeLeader();
  }

  // For the tests and the benchmark: state and the media counters of the current call.
  window.ccPhone = {
    state: function () {
      return { leader: leader, registered: registered, call: callState, muted: muted, held: held };
    },
    timings: function () {
      return { ringingAt: timings.ringingAt, acceptedAt: timings.acceptedAt, firstAudioAt: timings.firstAudioAt,
        registeredAt: registeredAt };
    },
    // ms from the answer (JsSIP "accepted") to the first RTP packet received (watchFirstAudio)
    audioDelay: function () {
      return new Promise(function (resolve, reject) {
        var deadline = performance.now() + 10000;
        (function wait() {
          if (timings.firstAudioAt) resolve(timings.firstAudioAt - timings.acceptedAt);
          else if (performance.now() > deadline) reject(new Error("no audio received"));
          else setTimeout(wait, 20);
        })();
      });
    },
    stats: function () {
      if (!session || !session.connection) return Promise.resolve(null);
      return session.connection.getStats().then(function (report) {
        var out = { packetsReceived: 0, packetsSent: 0, audioEnergy: 0 };
        report.forEach(function (r) {
          if (r.type === "inbound-rtp" && r.kind === "audio") {
            out.packetsReceived += r.packetsReceived || 0;
            out.audioEnergy += r.totalAudioEnergy || 0;
          }
          if (r.type === "outbound-rtp" && r.kind === "audio") out.packetsSent += r.packetsSent || 0;
        });
        return out;
      });
    }
  };
})();
