"""Static members' login / logout lines: which AMI events make which queue_log lines."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.ami import events as ev
from callcenter.ami.actions import Reply
from callcenter.ami.actions import queue_log as queue_log_action
from callcenter.bus import InProcessBus
from callcenter.config import Settings
from callcenter.statistics.presence import QUEUELOG_TOPIC, QueueLogWriter, StaticPresence


def member(queue="hotline", status=1, membership="static", iface="PJSIP/seat1003") -> ev.QueueMemberStatus:
    return ev.QueueMemberStatus(queue=queue, interface=iface, status=status, membership=membership)


def short(lines):
    return [(x["event"], x["queue"], x["interface"]) for x in lines]


# (event, the lines it makes) in order, one tracker: AST_DEVICE 5 unavailable, 1 free, 2 in use, 6 ringing
STEPS = [
    (member(status=5), [("REMOVEMEMBER", "hotline", "PJSIP/seat1003")]),  # first sight: said once
    (member(status=5), []),
    (member(status=1), [("ADDMEMBER", "hotline", "PJSIP/seat1003")]),  # the phone registered
    (member(status=6), []),  # ringing, talking, free: still logged in
    (member(status=2), []),
    (member(status=1), []),
    (member(status=1, membership="dynamic", iface="PJSIP/seat1004"), []),  # Asterisk logs those
    (member(queue="cc-seat-1003", status=1), []),  # a seat's own queue is not a skill queue
    (member(status=4), [("REMOVEMEMBER", "hotline", "PJSIP/seat1003")]),  # invalid: gone
    (member(status=0), [("ADDMEMBER", "hotline", "PJSIP/seat1003")]),  # unknown: Asterisk rings it
    (
        ev.QueueMemberRemoved(queue="hotline", interface="PJSIP/seat1003", membership="static"),
        [("REMOVEMEMBER", "hotline", "PJSIP/seat1003")],  # taken out of the queue by a reload
    ),
    (member(queue="elderly", status=1), [("ADDMEMBER", "elderly", "PJSIP/seat1003")]),
    # The engine reconnected: every static member again, and a logout for one gone meanwhile.
    (
        ev.Resync(members=[member(status=1, iface="PJSIP/seat1001"), member(status=5)]),
        [
            ("ADDMEMBER", "hotline", "PJSIP/seat1001"),
            ("REMOVEMEMBER", "hotline", "PJSIP/seat1003"),
            ("REMOVEMEMBER", "elderly", "PJSIP/seat1003"),
        ],
    ),
]


def test_lines_for_static_members():
    p = StaticPresence("queue_log")
    for i, (event, want) in enumerate(STEPS):
        got = p.observe(event)
        assert short(got) == want, i
        assert all(x["uniqueid"] == "STATIC" and x["source"] == "queue_log" for x in got)


def test_the_member_event_carries_membership():
    e = ev.parse_event(
        {
            "Event": "QueueMemberStatus",
            "Queue": "hotline",
            "MemberName": "座席王芳",
            "Interface": "PJSIP/seat1003",
            "StateInterface": "PJSIP/seat1003",
            "Membership": "static",
            "Status": "5",
            "Paused": "0",
        }
    )
    assert (e.membership, e.status, e.interface) == ("static", 5, "PJSIP/seat1003")


@pytest.mark.parametrize(
    "args",
    [
        ("hotline|x", "ADDMEMBER", "STATIC", "PJSIP/seat1003", ""),
        ("hotline", "CONNECT", "STATIC", "PJSIP/seat1003", ""),
        ("hotline", "ADDMEMBER", "STATIC", "PJSIP/seat1003\r\nAction: Originate", ""),
        ("hotline", "CALLBACKFAIL", "1.2", "NONE", "1.2|evil"),
    ],
)
def test_nothing_odd_reaches_queue_log(args):
    assert queue_log_action(*args) is None


class FakeAmi:
    def __init__(self):
        self.sent: list[dict] = []

    async def action(self, action, timeout=10.0, as_list=None):
        self.sent.append(action)

        class Message:
            success = True

        return Reply.of(Message())


async def test_the_writer_sends_its_own_engines_lines_in_order(tmp_path):
    settings = Settings(data_dir=tmp_path, _env_file=None)
    bus = InProcessBus()
    await bus.start()
    ami = FakeAmi()
    writer = QueueLogWriter(settings, bus, ami)
    await writer.start()
    p = StaticPresence(settings.stats_source)
    for event in (member(status=5), member(status=1)):
        for line in p.observe(event):
            await bus.publish(QUEUELOG_TOPIC, line)
    await bus.publish(QUEUELOG_TOPIC, {**p._line("hotline", "PJSIP/seat1003", False), "source": "other"})
    for _ in range(50):
        if len(ami.sent) >= 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await writer.stop()
    await bus.close()
    assert [(a["Action"], a["Event"], a["Queue"], a["UniqueId"], a["Interface"]) for a in ami.sent] == [
        ("QueueLog", "REMOVEMEMBER", "hotline", "STATIC", "PJSIP/seat1003"),
        ("QueueLog", "ADDMEMBER", "hotline", "STATIC", "PJSIP/seat1003"),
    ]
