"""The live model, driven by typed events as Asterisk sends them for each kind of call."""

import time

from callcenter.ami import events as ev
from callcenter.calls.models import UNSETTLED
from callcenter.calls.state import Identified, LiveModel, seat_of

CALLER = {"channel": "PJSIP/carrier-00000001", "uniqueid": "100.1", "linkedid": "100.1"}


def agent(cls, ext, at, **kw):
    return cls(
        **CALLER,
        queue="hotline",
        interface=f"PJSIP/seat{ext}",
        dest_channel=f"PJSIP/seat{ext}-0000000{ext[-1]}",
        received=at,
        **kw,
    )


def start_call(m: LiveModel, at=1000.0):
    m.apply(
        ev.Newchannel(
            **CALLER,
            caller_num="13912345678",
            caller_name="张三",
            exten="96345",
            context="from-carrier",
            received=at,
        )
    )
    m.identify(
        Identified(
            linkedid="100.1",
            caller="+8613912345678",
            resident_id=7,
            did="96345",
            source="carrier",
            received=at + 0.1,
        )
    )
    m.apply(ev.QueueCallerJoin(**CALLER, queue="hotline", received=at + 5))


def kinds(effects):
    return [(e.kind, e.ext, e.reason) for e in effects]


def test_seat_of():
    assert seat_of("PJSIP/seat1001") == "1001"
    assert seat_of("PJSIP/seat1001-0000002a") == "1001"
    assert seat_of("PJSIP/carrier-00000001") is None
    assert seat_of("SIP/seat1001") is None
    # The queue member, its Local channels, the hint, and a seat's browser endpoint with desk phones
    assert seat_of("Local/1001@cc-ring-seat/nm") == "1001"
    assert seat_of("Local/1001@cc-ring-seat-0000001f;1") == "1001"
    assert seat_of("hint:1001@cc-ring-seat") == "1001"
    assert seat_of("PJSIP/web1001-0000002b") == "1001"
    assert seat_of("Local/1001@elsewhere/n") is None


def test_a_seat_rung_through_its_local_member_knows_the_phone_that_answered():
    """Queue members are Local channels ringing every phone of the seat: the pop comes from the
    member, and call control later acts on the phone channel that answered (the others were
    hung up when it did), never on the Local leg."""
    m = LiveModel()
    start_call(m)
    local = {"interface": "Local/1001@cc-ring-seat/nm", "dest_channel": "Local/1001@cc-ring-seat-00000001;1"}
    called = ev.AgentCalled(**CALLER, queue="hotline", **local, received=1006.0)
    assert kinds(m.apply(called)) == [("pop", "1001", ""), ("seat", "1001", "")]
    legs = {"100.5": "PJSIP/seat1001-00000005", "100.6": "PJSIP/web1001-00000006"}
    for uid, channel in legs.items():
        m.apply(ev.Newchannel(channel=channel, uniqueid=uid, linkedid="100.1", received=1006.1))
    # The browser answers; the desk phone stops ringing.
    m.apply(ev.Hangup(channel=legs["100.5"], uniqueid="100.5", linkedid="100.1", received=1008.0))
    connect = ev.AgentConnect(**CALLER, queue="hotline", **local, received=1008.1)
    assert [e.kind for e in m.apply(connect)] == ["pop", "seat"]
    call = m.calls["100.1"]
    assert call.seat == "1001" and m.seat_channel(call) == "PJSIP/web1001-00000006"
    m.apply(ev.Hangup(channel=legs["100.6"], uniqueid="100.6", linkedid="100.1", received=1020.0))
    assert m.seat_channel(call) == "" and not m.phone_legs


def test_answered_call():
    m = LiveModel()
    start_call(m)
    assert kinds(m.apply(agent(ev.AgentCalled, "1001", 1006.0))) == [
        ("pop", "1001", ""),
        ("seat", "1001", ""),
    ]
    assert m.pop_for("1001").linkedid == "100.1"
    effects = m.apply(agent(ev.AgentConnect, "1001", 1009.0))
    assert kinds(effects) == [("pop", "1001", ""), ("seat", "1001", "")]
    m.apply(agent(ev.AgentComplete, "1001", 1039.0, talk_time=30))
    effects = m.apply(ev.Hangup(**CALLER, received=1039.5))
    rec = [e for e in effects if e.kind == "record"][0].call
    assert rec.outcome == "answered" and rec.seat == "1001"
    assert rec.wait_s == 4.0 and rec.ring_s == 3.0 and rec.talk_s == 30.0
    assert rec.resident_id == 7 and rec.caller == "+8613912345678"
    assert "100.1" not in m.calls and m.pop_for("1001") is None


def test_ring_no_answer_moves_pop_to_next_seat():
    m = LiveModel()
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    assert kinds(m.apply(agent(ev.AgentRingNoAnswer, "1001", 1021.0, ring_time_ms=15000))) == [
        ("clear", "1001", "noanswer"),
        ("seat", "1001", ""),
    ]
    m.apply(agent(ev.AgentCalled, "1002", 1021.1))
    m.apply(agent(ev.AgentConnect, "1002", 1023.1))
    rec = [e for e in m.apply(ev.Hangup(**CALLER, received=1050.0)) if e.kind == "record"][0].call
    assert rec.seat == "1002" and round(rec.ring_s, 3) == 2.0 and round(rec.wait_s, 3) == 18.1
    # From the hotline answering to the first seat ringing (the second seat's ring does not move it)
    assert rec.first_ring_s == 1006.0 - rec.started


def test_ringall_clears_the_others_on_answer():
    m = LiveModel()
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    m.apply(agent(ev.AgentCalled, "1002", 1006.0))
    effects = m.apply(agent(ev.AgentConnect, "1002", 1008.0))
    assert ("clear", "1001", "answered_elsewhere") in kinds(effects)


def test_abandoned_while_ringing():
    m = LiveModel()
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    effects = m.apply(ev.QueueCallerAbandon(**CALLER, queue="hotline", received=1012.0))
    assert kinds(effects) == [("clear", "1001", "abandoned"), ("seat", "1001", "")]
    rec = [e for e in m.apply(ev.Hangup(**CALLER, received=1012.0)) if e.kind == "record"][0].call
    assert rec.outcome == "abandoned" and rec.wait_s == 7.0 and rec.talk_s is None


def test_hangup_in_ivr():
    m = LiveModel()
    m.apply(ev.Newchannel(**CALLER, context="from-12345", exten="12345", received=1.0))
    rec = [e for e in m.apply(ev.Hangup(**CALLER, received=4.0)) if e.kind == "record"][0].call
    assert rec.outcome == "ivr" and rec.source == "12345"


def test_resync_after_restart_records_lost_calls_and_restores_live_ones():
    m = LiveModel()
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    # Asterisk restarted: the call is gone; another call is ringing seat 1002 already.
    channels = [
        ev.CoreShowChannel(
            variables={"CC_RESIDENT_ID": "42", "CC_ORDER12345": "GS1"},
            channel="PJSIP/carrier-00000009",
            uniqueid="200.1",
            linkedid="200.1",
            caller_num="13800000000",
            context="from-carrier",
            exten="96345",
            state="Up",
            duration=10,
        ),
        ev.CoreShowChannel(
            channel="PJSIP/seat1002-0000000a", uniqueid="200.2", linkedid="200.1", state="Ringing", duration=2
        ),
    ]
    members = [
        ev.QueueMemberStatus(queue="hotline", interface="PJSIP/seat1001", status=1),
        ev.QueueMemberStatus(queue="hotline", interface="PJSIP/seat1002", status=6),
    ]
    entries = [
        ev.QueueEntry(
            queue="hotline", channel="PJSIP/carrier-00000009", uniqueid="200.1", linkedid="200.1", wait=4
        )
    ]
    effects = m.resync(channels, members, entries, now=2000.0)
    k = kinds(effects)
    assert ("clear", "1001", "resync") in k and ("record", "", "") in k and ("pop", "1002", "") in k
    lost = [e.call for e in effects if e.kind == "record"][0]
    assert lost.linkedid == "100.1" and lost.outcome == "failed" and lost.resynced
    restored = m.calls["200.1"]
    assert (
        restored.queue == "hotline" and restored.queued_at == 1996.0 and restored.caller_raw == "13800000000"
    )
    assert m.pop_for("1002") is restored and m.pop_for("1001") is None
    assert m.seats["1002"].state == "ringing" and m.seats["1001"].state == "available"


def test_resync_after_a_lost_connection_leaves_vanished_calls_to_queue_log():
    """The AMI connection was cut while Asterisk ran on: a call that ended meanwhile was not cut
    by Asterisk, so it is neither failed nor guessed; its record waits for queue_log's word. A
    call Asterisk itself hung up while shutting down stays failed."""
    m = LiveModel()
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    effects = m.resync([], [], [], now=2000.0, asterisk_restarted=False)
    [gone] = [e.call for e in effects if e.kind == "record"]
    assert gone.linkedid == "100.1" and gone.outcome == UNSETTLED
    assert ("clear", "1001", "unseen") in kinds(effects) and m.pop_for("1001") is None
    m2 = LiveModel()
    start_call(m2)
    m2.calls["100.1"].cut = True
    effects = m2.resync([], [], [], now=2000.0, asterisk_restarted=False)
    [cut] = [e.call for e in effects if e.kind == "record"]
    assert cut.outcome == "failed"


def test_wrapup_after_a_call_then_available_again():
    m = LiveModel()
    m.wrapup_s = {"hotline": 30}
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    m.apply(agent(ev.AgentConnect, "1001", 1009.0))
    effects = m.apply(agent(ev.AgentComplete, "1001", 1039.0, talk_time=30))
    assert ("seat", "1001", "") in kinds(effects)
    seat = m.seats["1001"]
    seat.status = 1  # the phone is free again
    assert seat.wrapup_until == 1069.0
    seat.wrapup_until = time.time() + 30
    assert seat.state == "wrapup" and m.seat_view("1001")["state"] == "wrapup"
    seat.wrapup_until = time.time() - 1  # Asterisk sends nothing when wrap-up ends
    assert seat.state == "available"
    seat.paused = True
    assert seat.state == "paused"


def test_an_agent_complete_without_the_callers_channel_makes_no_call():
    """Asterisk sends AgentComplete without the caller's fields once its channel is gone (seen
    in benchmarks/bench_faults.py as Asterisk stopped, and now and then as a caller hung up):
    it starts the seat's wrap-up but is no call, so nothing of linkedid "" is ever recorded."""
    m = LiveModel()
    m.wrapup_s = {"hotline": 30}
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    m.apply(agent(ev.AgentConnect, "1001", 1009.0))
    orphan = ev.AgentComplete(
        queue="hotline",
        interface="Local/1001@cc-ring-seat/nm",
        dest_channel="",
        talk_time=30,
        reason="caller",
        received=1039.0,
    )
    assert kinds(m.apply(orphan)) == [("seat", "1001", "")]
    assert "" not in m.calls and m.seats["1001"].wrapup_until == 1069.0
    # The call ends with its Hangup as usual; a re-sync finds nothing else to record.
    effects = m.apply(ev.Hangup(**CALLER, received=1039.5))
    [rec] = [e.call for e in effects if e.kind == "record"]
    assert rec.linkedid == "100.1" and rec.outcome == "answered"
    assert not [e for e in m.resync([], [], [], now=1100.0) if e.kind == "record"]


def test_resync_takes_the_running_wrapup_from_last_call():
    m = LiveModel()
    m.wrapup_s = {"hotline": 60}
    now = time.time()
    member = ev.QueueMemberStatus(
        queue="hotline", interface="PJSIP/seat1001", status=1, last_call=int(now) - 10
    )
    m.resync([], [member], [], now=now)
    assert m.seats["1001"].state == "wrapup"
    assert m.seats["1001"].wrapup_until == int(now) + 50
    # the member's own wrap-up time wins over the queue's
    m2 = LiveModel()
    m2.wrapup_s = {"hotline": 60}
    m2.resync(
        [],
        [
            ev.QueueMemberStatus(
                queue="hotline", interface="PJSIP/seat1001", status=1, last_call=int(now) - 10, wrapup=5
            )
        ],
        [],
        now=now,
    )
    assert m2.seats["1001"].state == "available"


def member(ext, status, paused=False, reason="", at=1000.0):
    return ev.QueueMemberStatus(
        queue="hotline",
        interface=f"PJSIP/seat{ext}",
        member_name=f"seat{ext}",
        status=status,
        paused=paused,
        paused_reason=reason,
        received=at,
    )


def test_the_seats_state_is_the_pops_while_a_call_is_on_it():
    """One truth: whatever the phone's device state says meanwhile, a ringing call makes the seat
    ringing and an answered one talking, on the pop's own clock; paused says so with its reason."""
    m = LiveModel()
    m.apply(member("1001", 1))
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    m.apply(member("1001", 2, at=1006.2))  # the phone reports "in use" while it still rings
    s = m.seat_status("1001")
    assert (s.state, s.since) == ("ringing", 1006.0)
    m.apply(agent(ev.AgentConnect, "1001", 1009.0))
    s = m.seat_status("1001")
    assert (s.state, s.since) == ("talking", 1009.0)
    m.apply(agent(ev.AgentComplete, "1001", 1039.0, talk_time=30))
    effects = m.apply(ev.Hangup(**CALLER, received=1039.5))
    assert ("seat", "1001", "") in kinds(effects)
    m.apply(member("1001", 1, at=1040.0))
    assert m.seat_status("1001").state == "available"
    m.apply(member("1001", 1, paused=True, reason="用餐", at=1041.0))
    s = m.seat_status("1001")
    assert (s.state, s.paused_reason) == ("paused", "用餐")
    m.apply(member("1001", 5, at=1042.0))
    assert m.seat_status("1001").state == "unavailable"


def test_a_pause_asked_for_during_a_call_is_a_note_on_the_calls_state():
    """One state, not two: paused during a call the seat stays talking (the pop's state and
    clock) with the pause as a note and its reason; the pause shows as the state once it ends."""
    m = LiveModel()
    m.apply(member("1001", 1))
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    m.apply(member("1001", 6, paused=True, reason="用餐", at=1007.0))  # paused while it rings
    s = m.seat_status("1001")
    assert (s.state, s.since, s.paused, s.paused_reason) == ("ringing", 1006.0, True, "用餐")
    m.apply(agent(ev.AgentConnect, "1001", 1009.0))
    m.apply(member("1001", 2, paused=True, reason="用餐", at=1009.1))
    view = m.seat_view("1001")
    assert (view["state"], view["since"], view["paused"], view["paused_reason"]) == (
        "talking",
        1009.0,
        True,
        "用餐",
    )
    assert m.snapshot(now=1010.0)["seats"][0]["state"] == "talking"  # the wallboard agrees
    m.apply(agent(ev.AgentComplete, "1001", 1039.0, talk_time=30))
    effects = m.apply(ev.Hangup(**CALLER, received=1039.5))
    assert ("seat", "1001", "") in kinds(effects)
    s = m.seat_status("1001")
    assert (s.state, s.paused, s.paused_reason) == ("paused", True, "用餐")


def test_a_seat_with_no_registered_phone_is_unavailable_even_when_paused():
    m = LiveModel()
    member = {"queue": "hotline", "interface": "PJSIP/seat1001"}
    m.apply(ev.QueueMemberStatus(**member, status=1, paused=True, paused_reason="用餐"))
    assert m.seat_view("1001")["state"] == "paused"
    # Its last phone unregistered: Asterisk's device state of the endpoint is Unavailable (5).
    effects = m.apply(ev.QueueMemberStatus(**member, status=5, paused=True, paused_reason="用餐"))
    assert [e.kind for e in effects] == ["seat"]
    view = m.seat_view("1001")
    assert view["state"] == "unavailable" and view["paused"] is True and view["paused_reason"] == "用餐"
    # A phone registers again: the pause still holds.
    m.apply(ev.QueueMemberStatus(**member, status=1, paused=True, paused_reason="用餐"))
    assert m.seat_view("1001")["state"] == "paused"
    m.apply(ev.QueueMemberStatus(**member, status=1))
    assert m.seat_view("1001")["state"] == "available" and m.seat_view("1001")["paused"] is False


def test_a_caller_cut_by_asterisk_stopping_did_not_abandon():
    """Stopping, Asterisk hangs the caller up (SoftHangupRequest, SHUTDOWN) and app_queue then
    reports an abandon: the record says the call failed, not that the resident gave up."""
    m = LiveModel()
    start_call(m)
    m.apply(agent(ev.AgentCalled, "1001", 1006.0))
    m.apply(ev.SoftHangupRequest(**CALLER, cause=ev.SOFTHANGUP_SHUTDOWN, received=1010.0))
    m.apply(ev.QueueCallerAbandon(**CALLER, queue="hotline", received=1010.1))
    rec = [e for e in m.apply(ev.Hangup(**CALLER, received=1010.2)) if e.kind == "record"][0].call
    assert rec.outcome == "failed"
    # A caller who hangs up in the queue: Asterisk follows the abandon with a request of its own
    # (flag 16, seen on real calls); the caller did leave.
    m = LiveModel()
    start_call(m)
    m.apply(ev.QueueCallerAbandon(**CALLER, queue="hotline", received=1010.0))
    m.apply(ev.SoftHangupRequest(**CALLER, cause=16, received=1010.1))
    rec = [e for e in m.apply(ev.Hangup(**CALLER, received=1010.2)) if e.kind == "record"][0].call
    assert rec.outcome == "abandoned"
