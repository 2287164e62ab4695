"""queue_log entries → one reconciled record per queue call, and seats' login and pause time.

The reconciler is pure (no I/O): ``feed`` entries in file order, then take ``closed`` (finished
calls, as ``stat_call`` rows), ``seat_time`` (seconds per (day, seat, kind, reason)) and
``marks`` (calls written earlier that changed: an abandoned call called back, a booked callback
connected or failed). ``state()`` / ``load_state()`` carry
calls still in a queue and seats' open intervals across an app restart, so the follower can
resume mid-call from the offset where it stopped: nothing is counted twice, nothing lost.

How the awkward cases come out:
- ring-no-answer: RINGNOANSWER adds to the call's ``rna`` and to the seat's count; the call goes
  on waiting and is answered or abandoned as usual (its wait includes the ring-out);
- blind transfer (BLINDTRANSFER, or TRANSFER before Asterisk 12) and attended transfer
  (ATTENDEDTRANSFER): the call was answered; talk time is the agent's part; if the caller then
  enters another queue it is a new record with ``seq`` + 1, the same ``callid`` and DID;
- timeout / key / empty / withdraw: their own outcomes, not abandons; a caller who pressed a key
  and went back into the same queue (the callback key pressed too early) is the same call going
  on, so the exit by key waits ``KEY_GRACE_S`` for a re-entry or a booking before it counts;
- callback in queue: the caller's EXITWITHKEY followed by CALLBACKREQ (the dialplan, on booking)
  is that call's outcome: left by key, callback requested. The call back is another channel:
  CALLBACKCALL (the dialplan, the resident answered) then its own ENTERQUEUE …; its stay is
  recorded (``callback`` = ``call``) but is not an offered call; it resolves the request as
  ``connected`` when a seat answers it, else ``failed`` (also CALLBACKEND before it queued, and
  CALLBACKFAIL, written by the engine when every attempt went unanswered). Each request ends
  once, in the queue, day and hour of the call that booked it;
- a returning caller first rings their last seat through that seat's own queue (``cc-seat-<ext>``,
  see the dialplan's cc-queue): the call counts once, in the queue it was for (the DID line
  before the seat's queue names it); if the seat does not take it, the ring-out is part of the
  same call's wait in that queue, not a timeout of its own;
- QUEUESTART (Asterisk restarted): calls still open end then — waiting ones as ``lost``,
  talking ones answered with talk time up to the restart; seats' intervals close.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from callcenter.config import CHINA_TZ
from callcenter.ids import PERSONAL_QUEUE_PREFIX
from callcenter.statistics.queue_log import Entry

TRANSFER_MEMORY_S = 6 * 3600  # a transferred caller may enter another queue within this time
DID_MEMORY_S = 600  # a DID line precedes its ENTERQUEUE by seconds
PRUNE_EVERY_S = 6 * 3600  # of log time
KEY_GRACE_S = 30.0  # an exit by key, then the callback route and a re-entry or a booking
CALLBACK_MEMORY_S = 3 * 86400  # a booked callback is resolved within this time, or forgotten


def day_hour(ts: float) -> tuple[str, int]:
    d = datetime.fromtimestamp(ts, CHINA_TZ)
    return d.date().isoformat(), d.hour


def _next_midnight(ts: float) -> float:
    d = datetime.fromtimestamp(ts, CHINA_TZ)
    return datetime.combine(d.date() + timedelta(days=1), datetime.min.time(), CHINA_TZ).timestamp()


def _num(v: str) -> float | None:
    try:
        return float(v) if v else None
    except ValueError:
        return None


class Reconciler:
    def __init__(
        self,
        seat_of: Callable[[str], str] = lambda agent: agent,
        wrapup: dict[str, float] | None = None,
        callback_window_h: float = 24.0,
    ) -> None:
        self.seat_of = seat_of
        self.wrapup = wrapup or {}
        self.callback_window_s = callback_window_h * 3600
        self.open: dict[str, dict[str, Any]] = {}
        self.dids: dict[str, tuple] = {}  # callid → (ts, DID[, the queue a seat's own queue is for])
        self.transferred: dict[str, tuple[float, int, str]] = {}  # callid → (ts, last seq, did)
        self.abandoned: dict[str, list[tuple[float, str, int]]] = {}  # caller → (ts, callid, seq)
        self.logins: dict[str, tuple[float, list[str]]] = {}  # seat → (since, queues)
        self.pauses: dict[str, tuple[float, str]] = {}  # seat → (since, reason)
        self.keyed: dict[str, float] = {}  # callid → when it pressed a key (its stay still open)
        self.cb_req: dict[str, list] = {}  # linkedid → [ts, callid, seq, caller] of a booked callback
        self.cb_calls: dict[str, tuple[float, str]] = {}  # call back's callid → (ts, linkedid)
        self.last_ts = 0.0
        self.orphans = 0
        self.closed: list[dict[str, Any]] = []
        self.seat_time: dict[tuple[str, str, str, str], float] = {}
        self.marks: list[tuple[str, int, str]] = []  # (callid, seq, called_back|connected|failed)

    # -- output ------------------------------------------------------------------------------
    def take(self) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str, str], float], list]:
        out = (self.closed, self.seat_time, self.marks)
        self.closed, self.seat_time, self.marks = [], {}, []
        return out

    def flush(self, now: float) -> None:
        """The log has been quiet: exits by key older than ``KEY_GRACE_S`` count now."""
        if self.keyed:
            self._expire_keys(now)

    def state(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "dids": self.dids,
            "transferred": self.transferred,
            "abandoned": self.abandoned,
            "logins": self.logins,
            "pauses": self.pauses,
            "keyed": self.keyed,
            "cb_req": self.cb_req,
            "cb_calls": self.cb_calls,
            "last_ts": self.last_ts,
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self.open = s.get("open", {})
        self.dids = {k: tuple(v) for k, v in s.get("dids", {}).items()}
        self.transferred = {k: tuple(v) for k, v in s.get("transferred", {}).items()}
        self.abandoned = {k: [tuple(x) for x in v] for k, v in s.get("abandoned", {}).items()}
        self.logins = {k: (v[0], list(v[1])) for k, v in s.get("logins", {}).items()}
        self.pauses = {k: tuple(v) for k, v in s.get("pauses", {}).items()}
        self.keyed = dict(s.get("keyed", {}))
        self.cb_req = {k: list(v) for k, v in s.get("cb_req", {}).items()}
        self.cb_calls = {k: tuple(v) for k, v in s.get("cb_calls", {}).items()}
        self.last_ts = s.get("last_ts", 0.0)

    # -- input -------------------------------------------------------------------------------
    def feed(self, e: Entry) -> None:
        ev = e.event
        ts = e.ts
        if ts > self.last_ts:
            if int(ts) // PRUNE_EVERY_S != int(self.last_ts) // PRUNE_EVERY_S:
                self._prune(ts)
            self.last_ts = ts
        if self.keyed:
            self._expire_keys(ts)
        if ev == "DID":
            d = e.data
            self.dids[e.callid] = (ts, (d[0] if d else "")[:32], (d[1] if len(d) > 1 else "")[:32])
            return
        st = self.open.get(e.callid)
        if ev == "ENTERQUEUE":
            self._enter(e, st)
        elif ev == "CONNECT":
            if st is None:
                self.orphans += 1
                return
            d = e.data
            st["seat"] = self.seat_of(e.agent)
            st["wait_s"] = _num(d[0]) if d else None
            st["ring_s"] = _num(d[2]) if len(d) > 2 else None
            st["connect_ts"] = ts
        elif ev in ("COMPLETECALLER", "COMPLETEAGENT", "BLINDTRANSFER", "TRANSFER", "ATTENDEDTRANSFER"):
            if st is None:
                self.orphans += 1
                return
            if not st.get("seat"):
                st["seat"] = self.seat_of(e.agent)
            if ev[0] == "C":  # COMPLETECALLER / COMPLETEAGENT: holdtime|calltime|origposition
                d = e.data
                hold, talk = (d[0], d[1]) if len(d) > 1 else ("", "")
            else:
                hold, talk = e.get("holdtime"), e.get("calltime")
            if st.get("wait_s") is None:
                st["wait_s"] = _num(hold)
            st["talk_s"] = _num(talk)
            if ev in ("BLINDTRANSFER", "TRANSFER"):
                st["transfer"] = "blind"
                st["transfer_to"] = f"{e.get('extension')}@{e.get('context')}"[:80]
            elif ev == "ATTENDEDTRANSFER":
                st["transfer"] = "attended"
                st["transfer_to"] = f"{e.get('method')}:{e.get('target')}"[:80]
            self._close(e.callid, st, ts, "answered")
            if st.get("transfer"):
                self.transferred[e.callid] = (ts, st["seq"], st["did"])
        elif ev in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY", "WITHDRAW"):
            if st is None:
                self.orphans += 1
                return
            if st.get("personal") and ev in ("EXITWITHTIMEOUT", "EXITEMPTY"):
                st["continuing"] = True  # on to the queue it was for: the same call goes on
                return
            if ev == "EXITWITHKEY":
                # Back into the queue (re-entry), a callback booked, or a real exit: decided by
                # the next line of this call, or after KEY_GRACE_S.
                st["keyed"] = [ts, e.get("key")[:8], _num(e.get("waittime"))]
                self.keyed[e.callid] = ts
                return
            st["wait_s"] = _num(e.data[2]) if ev == "ABANDON" and len(e.data) > 2 else _num(e.get("waittime"))
            outcome = {
                "ABANDON": "abandoned",
                "EXITWITHTIMEOUT": "timeout",
                "EXITEMPTY": "exitempty",
                "EXITWITHKEY": "exitkey",
                "WITHDRAW": "withdrawn",
            }[ev]
            if ev == "EXITWITHKEY":
                st["exit_key"] = e.get("key")[:8]
            self._close(e.callid, st, ts, outcome)
        elif ev == "RINGNOANSWER":
            if st is not None:
                st["rna"] = st.get("rna", 0) + 1
            seat = self.seat_of(e.agent)
            self._add_time(day_hour(ts)[0], seat, "rna", "", 1)
        elif ev in ("PAUSE", "PAUSEALL"):
            self._pause(self.seat_of(e.agent), ts, e.get("reason")[:64])
        elif ev in ("UNPAUSE", "UNPAUSEALL"):
            self._unpause(self.seat_of(e.agent), ts)
        elif ev in ("ADDMEMBER", "AGENTLOGIN", "AGENTCALLBACKLOGIN"):
            self._login(self.seat_of(e.agent), ts, e.queue if ev == "ADDMEMBER" else "*agent")
        elif ev in ("REMOVEMEMBER", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
            self._logoff(self.seat_of(e.agent), ts, e.queue if ev == "REMOVEMEMBER" else "*agent")
        elif ev == "QUEUESTART":
            self._restart(ts)
        elif ev == "CALLBACKREQ":
            self._callback_booked(e, st)
        elif ev == "CALLBACKCALL":
            self.cb_calls[e.callid] = (ts, e.get("linkedid")[:64])
        elif ev == "CALLBACKEND":
            cur = self.cb_calls.pop(e.callid, None)
            if st is None and cur is not None:  # hung up before it queued: no seat reached
                self._resolve(cur[1], "failed")
        elif ev == "CALLBACKFAIL":
            self._resolve(e.get("linkedid"), "failed")
        # CONFIGRELOAD, SYSCOMPAT, RINGCANCELED, PENALTY, INFO, …: nothing to count.

    # -- calls -------------------------------------------------------------------------------
    def _enter(self, e: Entry, st: dict[str, Any] | None) -> None:
        personal = e.queue.startswith(PERSONAL_QUEUE_PREFIX)
        if st is not None and st.get("continuing") and not personal:
            # The returning caller's seat did not take the call: the same call, in its queue.
            st.pop("continuing")
            st.pop("personal", None)
            st["queue"] = e.queue[:32]
            st["carried_s"] = e.ts - st["enter_ts"]  # Asterisk's hold times start again here
            d = self.dids.pop(e.callid, None)
            st["did"] = d[1] if d is not None else st["did"]
            return
        if st is not None and st.get("keyed") and st["queue"] == e.queue[:32]:
            # Pressed a key, then back into the queue at its place: the same call goes on.
            self.keyed.pop(e.callid, None)
            st.pop("keyed")
            st["carried_s"] = e.ts - st["enter_ts"]  # Asterisk's hold times start again here
            return
        seq, did, queue = 0, "", e.queue[:32]
        if st is not None:
            # Left by key into another queue, or entered again without leaving (a lost line):
            # the old stay ends; the new one is the call's next record.
            if st.get("keyed"):
                self._close_keyed(e.callid, st)
            else:
                self._close(e.callid, st, e.ts, "lost")
            seq, did = st["seq"] + 1, st["did"]
        prev = self.transferred.pop(e.callid, None)
        if prev is not None:
            seq, did = max(seq, prev[1] + 1), prev[2]
        d = self.dids.get(e.callid) if personal else self.dids.pop(e.callid, None)
        if d is not None:
            did = d[1]
            if personal and len(d) > 2 and d[2]:
                queue = d[2]
        st = self.open[e.callid] = {
            "seq": seq,
            "queue": queue,
            "caller": (e.data[1] if len(e.data) > 1 else "")[:40],
            "did": did,
            "enter_ts": e.ts,
            "seat": "",
            "rna": 0,
            **({"personal": True} if personal else {}),
        }
        cb = self.cb_calls.pop(e.callid, None)
        if cb is not None:
            # Our call back to a resident who booked one: its caller is that resident.
            st["callback"], st["cb_for"] = "call", cb[1]
            req = self.cb_req.get(cb[1])
            if req is not None and req[3]:
                st["caller"] = req[3]

    def _close(self, callid: str, st: dict[str, Any], ts: float, outcome: str) -> None:
        self.open.pop(callid, None)
        day, hour = day_hour(st["enter_ts"])
        wait = st.get("wait_s")
        if wait is None:
            wait = (st.get("connect_ts") or ts) - st["enter_ts"]
        else:
            wait += st.get("carried_s", 0.0)
        answered = outcome == "answered"
        row = {
            "callid": callid[:64],
            "seq": st["seq"],
            "linkedid": callid[:64],
            "queue": st["queue"],
            "did": st["did"],
            "caller": st["caller"],
            "seat": st.get("seat", "") if answered else "",
            "entered_at": datetime.fromtimestamp(st["enter_ts"], UTC),
            "ended_at": datetime.fromtimestamp(ts, UTC),
            "day": day,
            "hour": hour,
            "outcome": outcome,
            "wait_s": wait,
            "ring_s": st.get("ring_s"),
            "talk_s": st.get("talk_s") if answered else None,
            "wrap_s": float(self.wrapup.get(st["queue"], 0)) if answered else None,
            "rna": st.get("rna", 0),
            "transfer": st.get("transfer", ""),
            "transfer_to": st.get("transfer_to", ""),
            "exit_key": st.get("exit_key", ""),
            "called_back": False,
            "callback": st.get("callback", ""),
        }
        caller = st["caller"]
        if outcome == "abandoned" and caller and not st.get("cb_for"):  # our call back: not theirs
            self.abandoned.setdefault(caller, []).append((st["enter_ts"], callid, st["seq"]))
        elif answered and caller and caller in self.abandoned:
            for _ts, cid, seq in self.abandoned.pop(caller):
                if st["enter_ts"] - _ts <= self.callback_window_s:
                    self._called_back(cid, seq)
        self.closed.append(row)
        if st.get("cb_for"):
            self._resolve(st["cb_for"], "connected" if answered else "failed")
        elif st.get("callback") == "requested":
            self.cb_req[st["cb_linkedid"]] = [ts, callid, st["seq"], caller]

    def _called_back(self, callid: str, seq: int) -> None:
        for row in self.closed:  # still in this batch: mark it before it is written
            if row["callid"] == callid and row["seq"] == seq:
                row["called_back"] = True
                return
        self.marks.append((callid, seq, "called_back"))

    # -- callback in queue -------------------------------------------------------------------
    def _close_keyed(self, callid: str, st: dict[str, Any]) -> None:
        key_ts, key, wait = st.pop("keyed")
        self.keyed.pop(callid, None)
        st["exit_key"] = key
        st["wait_s"] = wait
        self._close(callid, st, key_ts, "exitkey")

    def _expire_keys(self, now: float) -> None:
        for callid, ts in list(self.keyed.items()):
            if now - ts > KEY_GRACE_S:
                st = self.open.get(callid)
                if st is not None and st.get("keyed"):
                    self._close_keyed(callid, st)
                else:
                    self.keyed.pop(callid, None)

    def _callback_booked(self, e: Entry, st: dict[str, Any] | None) -> None:
        if st is None or not st.get("keyed"):
            self.orphans += 1
            return
        st["callback"] = "requested"
        st["cb_linkedid"] = (e.get("linkedid") or e.callid)[:64]
        self._close_keyed(e.callid, st)

    def _resolve(self, linkedid: str, outcome: str) -> None:
        """A booked callback's one outcome (connected | failed); later news of it is ignored."""
        req = self.cb_req.pop(linkedid, None)
        if req is None:
            return
        _ts, callid, seq, _caller = req
        for row in self.closed:  # still in this batch
            if row["callid"] == callid and row["seq"] == seq and row["callback"] == "requested":
                row["callback"] = outcome
                return
        self.marks.append((callid, seq, outcome))

    def _restart(self, ts: float) -> None:
        for callid, st in list(self.open.items()):
            if st.get("keyed"):
                self._close_keyed(callid, st)
            elif st.get("connect_ts") is not None:
                st["talk_s"] = ts - st["connect_ts"]
                self._close(callid, st, ts, "answered")
            else:
                self._close(callid, st, ts, "lost")
        for _ts, linkedid in list(self.cb_calls.values()):  # a call back cut off before it queued
            self._resolve(linkedid, "failed")
        self.cb_calls.clear()
        for seat in list(self.pauses):
            self._unpause(seat, ts)
        for seat in list(self.logins):
            self._end_login(seat, ts)

    def _prune(self, now: float) -> None:
        """Keep memory flat: forget what can no longer match."""
        self.dids = {k: v for k, v in self.dids.items() if now - v[0] < DID_MEMORY_S}
        self.transferred = {k: v for k, v in self.transferred.items() if now - v[0] < TRANSFER_MEMORY_S}
        self.cb_req = {k: v for k, v in self.cb_req.items() if now - v[0] < CALLBACK_MEMORY_S}
        self.cb_calls = {k: v for k, v in self.cb_calls.items() if now - v[0] < DID_MEMORY_S}
        window = self.callback_window_s
        self.abandoned = {
            k: kept for k, v in self.abandoned.items() if (kept := [x for x in v if now - x[0] < window])
        }

    # -- seats -------------------------------------------------------------------------------
    def _add_time(self, day: str, seat: str, kind: str, reason: str, amount: float) -> None:
        key = (day, seat[:64], kind, reason)
        self.seat_time[key] = self.seat_time.get(key, 0.0) + amount

    def _span(self, seat: str, kind: str, reason: str, start: float, end: float) -> None:
        """An interval, split at midnights (China time)."""
        while start < end:
            cut = min(end, _next_midnight(start))
            self._add_time(day_hour(start)[0], seat, kind, reason, cut - start)
            start = cut

    def _pause(self, seat: str, ts: float, reason: str) -> None:
        cur = self.pauses.get(seat)
        if cur is not None:
            if cur[1] == reason:
                return  # PAUSEALL then PAUSE per queue: one pause
            self._span(seat, "pause", cur[1], cur[0], ts)
        self.pauses[seat] = (ts, reason)

    def _unpause(self, seat: str, ts: float) -> None:
        cur = self.pauses.pop(seat, None)
        if cur is not None:
            self._span(seat, "pause", cur[1], cur[0], ts)

    def _login(self, seat: str, ts: float, queue: str) -> None:
        since, queues = self.logins.get(seat, (ts, []))
        if queue not in queues:
            queues.append(queue)
        self.logins[seat] = (since, queues)

    def _logoff(self, seat: str, ts: float, queue: str) -> None:
        cur = self.logins.get(seat)
        if cur is None:
            return
        if queue in cur[1]:
            cur[1].remove(queue)
        if not cur[1]:
            self._end_login(seat, ts)

    def _end_login(self, seat: str, ts: float) -> None:
        cur = self.logins.pop(seat, None)
        if cur is not None:
            self._span(seat, "login", "", cur[0], ts)
        self._unpause(seat, ts)
