"""Call control in the engine: every AMI action is built from checked values, and a
seat acts only on its own call. A fake AMI here records the actions; tests/e2e/test_callcontrol.py
drives the real Asterisk."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlmodel import select

from callcenter.ami import events as ev
from callcenter.ami.actions import Reply
from callcenter.audit.models import AuditEntry
from callcenter.bus import InProcessBus
from callcenter.callcontrol.callbacks import CallbackWorker, FollowUpWorker, request_followup
from callcenter.callcontrol.models import Callback, FollowUp
from callcenter.callcontrol.recordings import purge, recordings_dir
from callcenter.callcontrol.service import CallControl
from callcenter.calls.models import CallRecord
from callcenter.calls.state import LiveModel
from callcenter.database import session_scope
from hotline.cli import build_parser

CALLER = {"channel": "PJSIP/carrier-00000001", "uniqueid": "100.1", "linkedid": "100.1"}


class FakeAmi:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def action(self, action, timeout=10.0, as_list=None):
        self.sent.append(dict(action))

        class Message(dict):
            success = True

        return Reply.of(Message(Response="Success"))

    held_action = action


class FakeDirectory:
    async def extensions(self):
        return {"1001", "1002", "1006"}

    async def queues(self):
        return {"hotline", "helpdesk"}

    async def caller_id(self):
        return "96345"

    async def member_name(self, ext):
        return f"座席{ext}"


def talking_model(ext="1001") -> LiveModel:
    m = LiveModel()
    m.apply(
        ev.Newchannel(**CALLER, caller_num="13912345678", exten="96345", context="from-carrier", received=1.0)
    )
    m.apply(ev.QueueCallerJoin(**CALLER, queue="hotline", received=2.0))
    # The queue rings the seat's member interface; its Local channel rings the seat's phone.
    base = {
        **CALLER,
        "queue": "hotline",
        "interface": f"Local/{ext}@cc-ring-seat/nm",
        "dest_channel": f"Local/{ext}@cc-ring-seat-00000003;1",
    }
    m.apply(ev.AgentCalled(**base, received=3.0))
    phone = {"channel": f"PJSIP/seat{ext}-0000000a", "uniqueid": "100.4", "linkedid": "100.1"}
    m.apply(ev.Newchannel(**phone, caller_num=ext, exten="", context="seats", received=3.1))
    m.apply(ev.AgentConnect(**base, received=4.0))
    return m


@pytest.fixture
def control(settings):
    settings.outbound_contact = "sip:127.0.0.1:5070"
    settings.trunk12345_contact = "sip:127.0.0.2:5070"
    ami = FakeAmi()
    cc = CallControl(settings, InProcessBus(), ami, talking_model(), FakeDirectory())
    return cc, ami


async def test_a_seat_acts_only_on_its_own_call(control):
    cc, ami = control
    r = await cc.run({"action": "hangup", "ext": "1002", "linkedid": "100.1"})
    assert r == {
        "type": "callcontrol",
        "action": "hangup",
        "ok": False,
        "linkedid": "100.1",
        "error": "not your call",
    }
    r = await cc.run({"action": "hangup", "ext": "1001", "linkedid": "100.1"})
    assert r["ok"] and ami.sent == [{"Action": "Hangup", "Channel": "PJSIP/seat1001-0000000a", "Cause": "16"}]


async def test_transfers_are_built_from_checked_values(control):
    cc, ami = control
    r = await cc.run(
        {
            "action": "transfer",
            "ext": "1001",
            "linkedid": "100.1",
            "mode": "blind",
            "kind": "seat",
            "target": "1006",
        }
    )
    assert r["ok"]
    assert ami.sent[-1] == {
        "Action": "Redirect",
        "Channel": "PJSIP/carrier-00000001",
        "Context": "cc-xfer-seat",
        "Exten": "1006",
        "Priority": "1",
    }
    r = await cc.run(
        {
            "action": "transfer",
            "ext": "1001",
            "linkedid": "100.1",
            "mode": "attended",
            "kind": "queue",
            "target": "helpdesk",
        }
    )
    assert r["ok"] and ami.sent[-1] == {
        "Action": "Atxfer",
        "Channel": "PJSIP/seat1001-0000000a",
        "Context": "cc-xfer-queue",
        "Exten": "helpdesk",
    }
    n = len(ami.sent)
    for kind, target, error in (
        ("seat", "9999", "no such seat"),
        ("seat", "1001", "bad seat"),
        ("queue", "nosuch", "no such queue"),
        ("outside", "1;Dial(x)", "number refused: bad_characters"),
        ("outside", "110", "number refused: emergency"),
        ("outside", "+882164000000", "number refused: international"),
        ("12345", "", "not a 12345 call"),
    ):
        cmd = {
            "action": "transfer",
            "ext": "1001",
            "linkedid": "100.1",
            "mode": "blind",
            "kind": kind,
            "target": target,
        }
        r = await cc.run(cmd)
        assert r["error"] == error, (kind, r)
    assert len(ami.sent) == n  # nothing refused reached Asterisk


async def test_click_to_call_and_listen_in(control):
    cc, ami = control
    r = await cc.run({"action": "dial", "ext": "1002", "number": "+86 139-1931-0001"})
    assert r["ok"]
    sent = ami.sent[-1]
    # every phone of the seat rings, through the queue member interface
    assert sent["Channel"] == "Local/1002@cc-ring-seat/nm" and sent["Exten"] == "13919310001"
    assert (
        sent["Context"] == "cc-dialout"
        and sent["Variable"] == "CC_CLID=96345"
        and sent["ChannelId"] == r["linkedid"]
        and sent["Codecs"] == "alaw,ulaw"  # not AMI's signed-linear default through the Local channel
    )
    assert (await cc.run({"action": "dial", "ext": "1002", "number": "13919310002"}))[
        "error"
    ] == "the seat is on a call"
    # That call is over (gone from the live model): the seat may call again.
    dialled = ami.sent[-1]["ChannelId"]
    cc.outbound[dialled] = ("1002", time.monotonic() - 11)
    assert (await cc.run({"action": "dial", "ext": "1002", "number": "13919310002"}))["ok"]
    assert dialled not in cc.outbound
    # Its first channel shows: the seat's Local channel; hanging up ends that one (and so all of
    # the seat's phones and the resident's leg with it). Another seat's Local channel is refused.
    latest = ami.sent[-1]["ChannelId"]
    cc.model.apply(
        ev.Newchannel(
            channel="Local/1002@cc-ring-seat-0000000b;1",
            uniqueid=latest,
            linkedid=latest,
            caller_num="96345",
            exten="13919310002",
            context="cc-ring-seat",
            received=5.0,
        )
    )
    r = await cc.run({"action": "hangup", "ext": "1002", "linkedid": latest})
    assert r["ok"] and ami.sent[-1] == {
        "Action": "Hangup",
        "Channel": "Local/1002@cc-ring-seat-0000000b;1",
        "Cause": "16",
    }
    cc.model.calls[latest].channel = "Local/1001@cc-ring-seat-0000000c;1"
    r = await cc.run({"action": "hangup", "ext": "1002", "linkedid": latest})
    assert r["error"] == "the seat's channel is not known"
    r = await cc.run({"action": "spy", "ext": "1900", "target_ext": "1001", "mode": "whisper"})
    assert r["ok"] and ami.sent[-1]["Application"] == "ChanSpy"
    assert (
        ami.sent[-1]["Data"] == "PJSIP/seat1001-0000000a,qwE" and ami.sent[-1]["Channel"] == "PJSIP/seat1900"
    )
    assert (await cc.run({"action": "spy", "ext": "1900", "target_ext": "1002", "mode": "listen"}))[
        "error"
    ] == ("the seat is not on a call")
    assert (await cc.run({"action": "spy", "ext": "1900", "target_ext": "1001", "mode": "x"}))["error"]


async def test_queue_login_and_logout(control):
    cc, ami = control
    assert (await cc.run({"action": "queue_login", "ext": "1001", "queue": "helpdesk"}))["ok"]
    assert ami.sent[-1] == {
        "Action": "QueueAdd",
        "Queue": "helpdesk",
        "Interface": "Local/1001@cc-ring-seat/nm",
        "StateInterface": "hint:1001@cc-ring-seat",
        "MemberName": "座席1001",
        "Penalty": "0",
    }
    assert (await cc.run({"action": "queue_logout", "ext": "1001", "queue": "helpdesk"}))["ok"]
    assert ami.sent[-1] == {
        "Action": "QueueRemove",
        "Queue": "helpdesk",
        "Interface": "Local/1001@cc-ring-seat/nm",
    }
    assert (await cc.run({"action": "queue_login", "ext": "1001", "queue": "other"}))[
        "error"
    ] == "no such queue"
    assert (await cc.run({"action": "nope", "ext": "1001"}))["error"] == "unknown action"
    assert (await cc.run({"action": "hangup", "ext": "10*1"}))["error"] == "bad extension"


async def test_click_to_call_refused_by_the_dial_out_policy_is_audited_and_explained(control, settings):
    cc, ami = control
    for number, reason in (
        ("120", "emergency"),
        ("95588", "service_number"),
        ("１３９１９３１０００１", "bad_characters"),
    ):
        r = await cc.run({"action": "dial", "ext": "1002", "actor": "seat1002", "number": number})
        assert r["ok"] is False and r["refused"] == reason, r
    assert ami.sent == []  # nothing refused reached Asterisk
    with session_scope(settings) as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.action == "dialout.refused")).all()
    assert [(e.actor, e.target, e.detail["purpose"], e.detail["reason"]) for e in entries] == [
        ("seat1002", "120", "dial", "emergency"),
        ("seat1002", "95588", "dial", "service_number"),
        ("seat1002", "１３９１９３１０００１", "dial", "bad_characters"),
    ]


def test_callback_accepts_only_a_caller_who_waited(settings):
    settings.callback_offer_after_s = 30
    m = LiveModel()
    m.apply(
        ev.Newchannel(**CALLER, caller_num="13912345678", exten="96345", context="from-carrier", received=1.0)
    )
    m.apply(ev.QueueCallerJoin(**CALLER, queue="hotline", received=time.time() - 10))
    worker = CallbackWorker(settings, InProcessBus(), FakeAmi(), m, FakeDirectory())
    assert worker.accept("100.1") == (False, "hotline")  # 10 s: too early, back in the queue
    assert worker.accept("999.9") == (False, "")
    assert worker.accept("1;Hangup") == (False, "")


def test_followup_ratings_are_1_to_5(settings):
    worker = FollowUpWorker(settings, InProcessBus(), FakeAmi(), FakeDirectory())
    assert worker.rated("7", "3") and worker.rated("7", "5")
    assert not worker.rated("7", "6") and not worker.rated("7", "") and not worker.rated("x", "1")
    assert not worker.rated("²", "1") and not worker.rated("9" * 5000, "1")  # no exception either


def test_purge_deletes_old_recordings_and_is_audited(settings):
    folder = recordings_dir(settings)
    folder.mkdir(parents=True)
    old, new = folder / "1000.1.wav", folder / "2000.2.wav"
    old.write_bytes(b"RIFF")
    new.write_bytes(b"RIFF")
    (folder / "notes.txt").write_text("not a recording")
    long_ago = time.time() - 200 * 86400
    os.utime(old, (long_ago, long_ago))
    from datetime import UTC, datetime

    with session_scope(settings) as s:
        s.add(CallRecord(linkedid="1000.1", started_at=datetime.now(UTC), recording="1000.1.wav"))
        s.commit()
    assert purge(settings, days=180, dry_run=True) == ["1000.1.wav"] and old.exists()
    assert purge(settings, days=180) == ["1000.1.wav"]
    assert not old.exists() and new.exists() and (folder / "notes.txt").exists()
    with session_scope(settings) as s:
        assert s.exec(select(CallRecord)).one().recording == ""
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "recording.purge")).one()
        assert entry.detail["files"] == ["1000.1.wav"]


def test_the_cli_has_the_purge_command():
    args = build_parser().parse_args(["recordings", "purge", "--days", "30", "--dry-run"])
    assert args.days == 30 and args.dry_run


class ScriptedAmi:
    """Answers each Originate with the next scripted outcome; a rating digit may follow."""

    def __init__(self, outcomes, worker_ref):
        self.outcomes = list(outcomes)
        self.worker_ref = worker_ref
        self.sent: list[dict] = []

    async def action(self, action, timeout=10.0, as_list=None):
        import asyncio

        self.sent.append(dict(action))
        answered, digit = self.outcomes.pop(0)

        class Message(dict):
            success = answered

        if answered and digit is not None:
            fu_id = action["Variable"].split("=", 1)[1]
            asyncio.get_running_loop().call_later(0.1, self.worker_ref[0].rated, fu_id, digit)
        return Reply.of(
            Message(Response="Success" if answered else "Error", Message="" if answered else "no answer")
        )

    held_action = action  # the client sends a held action on a session of its own


async def _followup_run(settings, outcomes, reference):

    settings.outbound_contact = "sip:127.0.0.1:5070"
    settings.followup_retry_s = 0
    settings.followup_attempts = 3
    bus = InProcessBus()
    ref: list = []
    ami = ScriptedAmi(outcomes, ref)
    worker = FollowUpWorker(settings, bus, ami, FakeDirectory())
    ref.append(worker)
    results = bus.subscribe("followup.result")
    await worker.start()
    try:
        await bus.publish("followup.request", {"phone": "13919310001", "reference": reference})
        _topic, result = await results.get(timeout=20)
    finally:
        await worker.stop()
    return result, ami


async def test_followup_rating_is_stored_and_published(settings):
    result, ami = await _followup_run(settings, [(False, None), (True, ""), (True, "4")], "AN-1")
    assert result == {"reference": "AN-1", "status": "rated", "rating": 4, "attempts": 3}
    assert (
        ami.sent[0]["Channel"] == "PJSIP/13919310001@cc-outbound" and ami.sent[0]["Context"] == "cc-followup"
    )
    with session_scope(settings) as s:
        row = s.exec(select(FollowUp)).one()
    assert row.status == "rated" and row.rating == 4 and row.attempts == 3


async def test_followup_unanswered_becomes_unreachable(settings):
    result, _ami = await _followup_run(settings, [(False, None)] * 3, "AN-2")
    assert result == {"reference": "AN-2", "status": "unreachable", "rating": None, "attempts": 3}


async def test_followup_request_with_a_bad_reference_is_refused(settings):
    import asyncio

    bus = InProcessBus()
    worker = FollowUpWorker(settings, bus, FakeAmi(), FakeDirectory())
    await worker.start()
    await bus.publish("followup.request", {"phone": "13919310001", "reference": "x'; drop table"})
    await bus.publish("followup.request", {"phone": "not a number", "reference": "AN-3"})
    await asyncio.sleep(0.3)
    await worker.stop()
    with session_scope(settings) as s:
        assert s.exec(select(FollowUp)).all() == []


async def test_followup_after_each_answered_call_when_configured(settings):
    import asyncio

    settings.followup_after_call = True
    bus = InProcessBus()
    requests = bus.subscribe("followup.request")
    worker = FollowUpWorker(settings, bus, FakeAmi(), FakeDirectory())
    await worker.start()
    try:
        base = {"caller": "+8613919310001", "queue": "hotline"}
        await bus.publish("calls.recorded", {**base, "linkedid": "1.1", "outcome": "abandoned"})
        await bus.publish("calls.recorded", {**base, "linkedid": "1.2", "outcome": "answered"})
        await bus.publish(
            "calls.recorded", {"caller": "", "queue": "", "linkedid": "1.3", "outcome": "answered"}
        )
        # The raw caller ID of a number that was not normalised is never called back.
        await bus.publish(
            "calls.recorded", {**base, "caller": "110", "linkedid": "1.4", "outcome": "answered"}
        )
        _topic, asked = await requests.get(timeout=2)
        assert asked == {"phone": "+8613919310001", "reference": "call:1.2"}
        with pytest.raises(asyncio.TimeoutError):
            await requests.get(timeout=0.3)
    finally:
        await worker.stop()


def _waiting_model(caller_num: str) -> LiveModel:
    m = LiveModel()
    m.apply(
        ev.Newchannel(**CALLER, caller_num=caller_num, exten="96345", context="from-carrier", received=1.0)
    )
    m.apply(ev.QueueCallerJoin(**CALLER, queue="hotline", received=time.time() - 60))
    return m


@pytest.mark.parametrize(
    ("caller_num", "reason"),
    [
        ("110", "emergency"),
        ("+882164000000", "international"),
        ("95588", "service_number"),
        ("12345", "service_number"),
    ],
)
async def test_a_callback_to_a_hostile_caller_id_is_refused_stored_and_audited(settings, caller_num, reason):
    bus = InProcessBus()
    worker = CallbackWorker(settings, bus, FakeAmi(), _waiting_model(caller_num), FakeDirectory())
    sub = bus.subscribe("callback.request")
    await sub.ready.wait()
    assert worker.accept("100.1") == (False, "hotline")  # back into the queue, never booked
    _topic, payload = await sub.get(5)
    worker._insert("100.1", payload["phone"], "hotline")
    with session_scope(settings) as s:
        row = s.exec(select(Callback)).one()
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "dialout.refused")).one()
    assert (row.phone, row.status, row.outcome) == (caller_num, "refused", reason)
    assert entry.detail["purpose"] == "callback" and entry.detail["reason"] == reason
    assert worker._due() == []  # nothing to call


async def test_the_raw_caller_id_is_never_booked(settings):
    worker = CallbackWorker(
        settings, InProcessBus(), FakeAmi(), _waiting_model("13912345678"), FakeDirectory()
    )
    worker._insert("100.2", "13912345678", "hotline")  # not the normalised form the route sends
    with session_scope(settings) as s:
        assert s.exec(select(Callback)).one().status == "refused"


async def test_automatic_calls_per_number_are_capped_across_restarts(settings):
    settings.dialout_daily_cap = 2
    worker = CallbackWorker(
        settings, InProcessBus(), FakeAmi(), _waiting_model("13912345678"), FakeDirectory()
    )
    worker._insert("100.3", "+8613912345678", "hotline")
    with session_scope(settings) as s:
        assert request_followup(s, "13912345678", "AN-9", settings)
        s.commit()
        # The cap is reached: a third automatic call to the number is refused and audited.
        assert not request_followup(s, "+86 139 1234 5678", "AN-10", settings)
        s.commit()
        assert (
            s.exec(select(AuditEntry).where(AuditEntry.action == "dialout.refused")).one().detail["reason"]
            == "daily_cap"
        )
    # A restarted engine counts from the tables: the route refuses at once.
    fresh = CallbackWorker(
        settings, InProcessBus(), FakeAmi(), _waiting_model("13912345678"), FakeDirectory()
    )
    fresh.daily.load()
    assert fresh.daily.count("+8613912345678") == 2
    assert fresh.accept("100.1") == (False, "hotline")


async def test_the_originator_checks_the_number_again(settings):
    settings.outbound_contact = "sip:127.0.0.1:5070"
    ami = FakeAmi()
    worker = FollowUpWorker(settings, InProcessBus(), ami, FakeDirectory())
    ok, detail = await worker.originator.originate("110", "cc-followup", {"CC_FU_ID": "1"})
    assert not ok and detail == "refused: emergency" and ami.sent == []


async def test_only_signed_commands_from_the_web_workers_move_calls(control, settings):
    """Whoever reaches the bus could publish a command: the engine acts only on those signed
    with the secret it shares with the web workers, fresh and once."""
    from callcenter.bus import Subscription
    from callcenter.messages import sign

    cc, ami = control
    sub = Subscription(("engine.callcontrol",), lambda _s: None)
    command = {"action": "hangup", "ext": "1001", "linkedid": "100.1"}
    now = time.time()
    forged = [
        command,  # unsigned
        sign(command, "not-the-secret-" + "x" * 16, now),
        {**sign(command, settings.bus_secret, now), "ext": "1002"},  # altered after signing
        sign(command, settings.bus_secret, now - 3600),  # stale
    ]
    for payload in forged:
        await cc.handle(payload, sub)
    await asyncio.sleep(0.05)
    assert ami.sent == []
    signed = sign(command, settings.bus_secret, now)
    await cc.handle(signed, sub)
    await cc.handle(signed, sub)  # replayed: dropped
    await asyncio.sleep(0.05)
    assert ami.sent == [{"Action": "Hangup", "Channel": "PJSIP/seat1001-0000000a", "Cause": "16"}]
