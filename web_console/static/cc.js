// Shared by the console's scripts (load it after i18n.js and before them):
// - cc.api(method, url, body): fetch with the session's CSRF token, JSON in and out; resolves to
//   {status, data} (data is {} when the answer is not JSON);
// - cc.socket(options): the one WebSocket client of the seat console and the wallboard, reconnected
//   with jittered backoff, kept alive with a ping, and dropped when it falls silent;
// - cc.protocol: the WebSocket protocol's names and close codes, from the server's "cc-protocol"
//   JSON block (web_console/protocol.py; docs/websocket.md), so no page writes them out itself.
(function () {
  "use strict";

  var protocol = {};
  try {
    protocol = JSON.parse(document.getElementById("cc-protocol").textContent) || {};
  } catch (e) {
    protocol = {};
  }
  var CLOSE = protocol.close || {};
  var CONTROL = protocol.control || {};

  function csrfToken() {
    var input = document.querySelector('input[name="csrf"]');
    return input ? input.value : "";
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().then(function (data) { return { status: r.status, data: data }; },
        function () { return { status: r.status, data: {} }; });
    });
  }

  var PING_EVERY = 25000;
  var SILENCE_LIMIT = 60000;
  var STABLE_AFTER = 5000;

  // options: path ("/ws/console"), kind ("console" | "wallboard"), onMessage(msg),
  // onReady(msg) (the subscription is live), onState(state) with state one of "connecting",
  // "online", "offline", "forbidden", "no_extension".
  function socket(options) {
    var ws = null;
    var attempt = 0;
    var stopped = false;
    var reconnectTimer = null;
    var lastHeard = 0;
    var readyTopic = options.kind + "." + CONTROL.READY;
    var pongTopic = options.kind + "." + CONTROL.PONG;
    function state(s) {
      if (options.onState) options.onState(s);
    }

    function url() {
      var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
      return proto + "//" + window.location.host + options.path;
    }

    function scheduleReconnect() {
      if (stopped || reconnectTimer !== null) return;
      var ceiling = Math.min(15000, 500 * Math.pow(2, attempt));
      var delay = ceiling / 2 + Math.random() * (ceiling / 2);
      attempt += 1;
      reconnectTimer = window.setTimeout(function () {
        reconnectTimer = null;
        connect();
      }, delay);
    }

    function connect() {
      if (stopped || ws) return;
      if (attempt === 0) state("connecting");
      var sock;
      try {
        sock = new WebSocket(url());
      } catch (e) {
        state("offline");
        scheduleReconnect();
        return;
      }
      ws = sock;
      var openedAt = 0;
      sock.onopen = function () {
        lastHeard = Date.now();
      };
      sock.onmessage = function (ev) {
        lastHeard = Date.now();
        if (typeof ev.data !== "string") return;
        var msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (e) {
          return;
        }
        if (!msg || typeof msg !== "object" || msg.topic === pongTopic) return;
        if (msg.topic === readyTopic) {
          openedAt = Date.now();
          state("online");
          if (options.onReady) options.onReady(msg);
          return;
        }
        options.onMessage(msg);
      };
      sock.onclose = function (ev) {
        if (ws === sock) ws = null;
        if (ev.code === CLOSE.UNAUTHENTICATED) {
          stopped = true;
          state("offline");
          window.location.assign("/login");
          return;
        }
        if (ev.code === CLOSE.EXTENSION_CHANGED) {
          stopped = true;
          window.location.reload();
          return;
        }
        if (ev.code === CLOSE.FORBIDDEN || ev.code === CLOSE.NO_EXTENSION) {
          stopped = true;
          state(ev.code === CLOSE.FORBIDDEN ? "forbidden" : "no_extension");
          return;
        }
        // Back off from scratch only after a connection that lasted; a server that accepts and
        // drops at once keeps the delay growing.
        if (openedAt && Date.now() - openedAt > STABLE_AFTER) attempt = 0;
        state("offline");
        scheduleReconnect();
      };
    }

    window.setInterval(function () {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - lastHeard > SILENCE_LIMIT) {
        // A half-open connection (sleep, network change): drop it without waiting for a close.
        var dead = ws;
        ws = null;
        dead.onclose = null;
        dead.onmessage = null;
        try {
          dead.close(CLOSE.CLIENT_SILENT, "silent");
        } catch (e) {
          /* already closing */
        }
        state("offline");
        scheduleReconnect();
        return;
      }
      try {
        ws.send(protocol.ping);
      } catch (e) {
        /* the close handler reconnects */
      }
    }, PING_EVERY);

    window.addEventListener("online", function () {
      if (!ws && !stopped) {
        if (reconnectTimer !== null) window.clearTimeout(reconnectTimer);
        reconnectTimer = null;
        connect();
      }
    });

    connect();
  }

  window.cc = { api: api, socket: socket, protocol: protocol, types: protocol.types || {} };
})();
