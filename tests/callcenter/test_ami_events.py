from panoramisk.message import Message

from callcenter.ami import events as ev


def msg(**kw):
    return Message({k: v for k, v in kw.items()})


def test_agent_called_is_typed():
    e = ev.parse_event(
        msg(
            Event="AgentCalled",
            Channel="PJSIP/carrier-00000001",
            Uniqueid="1700000000.1",
            Linkedid="1700000000.1",
            CallerIDNum="13912345678",
            CallerIDName='<script>alert("x")</script>',
            DestChannel="PJSIP/seat1001-00000002",
            DestUniqueid="1700000000.2",
            Queue="hotline",
            Interface="PJSIP/seat1001",
            MemberName="座席张敏",
        )
    )
    assert isinstance(e, ev.AgentCalled)
    assert e.linkedid == "1700000000.1" and e.interface == "PJSIP/seat1001"
    assert e.caller_name == '<script>alert("x")</script>'
    assert e.member_name == "座席张敏"
    stored = ev.as_dict(e)  # a queue event's row: every field but the two clocks
    assert stored["queue"] == "hotline" and stored["dest_uniqueid"] == "1700000000.2"
    assert "received" not in stored and "emitted" not in stored
    assert ev.as_dict(ev.QueueCallerLeave(queue="q", count=2)) == {
        **{f: getattr(ev.QueueCallerLeave(), f) for f in ("channel", "uniqueid", "linkedid", "state")},
        **{"caller_num": "", "caller_name": "", "exten": "", "context": ""},
        **{"variables": {}, "queue": "q", "count": 2},
    }


def test_units_follow_asterisk():
    rna = ev.parse_event(msg(Event="AgentRingNoAnswer", RingTime="15000", Interface="PJSIP/seat1001"))
    assert isinstance(rna, ev.AgentRingNoAnswer) and rna.ring_time_ms == 15000
    done = ev.parse_event(msg(Event="AgentComplete", HoldTime="12", TalkTime="30", Reason="caller"))
    assert isinstance(done, ev.AgentComplete) and done.talk_time == 30 and done.reason == "caller"


def test_unknowns_and_placeholders():
    assert ev.parse_event(msg(Event="VarSet", Variable="X")) is None
    h = ev.parse_event(msg(Event="Hangup", Uniqueid="1.1", CallerIDName="<unknown>", Cause="16"))
    assert isinstance(h, ev.Hangup) and h.caller_name == "" and h.linkedid == "1.1" and h.cause == 16


def test_queue_status_lines():
    m = ev.parse_event(
        msg(
            Event="QueueMember",
            Queue="hotline",
            Location="PJSIP/seat1002",
            Name="李娜",
            Status="1",
            Paused="1",
            PausedReason="用餐",
        )
    )
    assert (
        isinstance(m, ev.QueueMemberStatus)
        and m.paused
        and m.paused_reason == "用餐"
        and m.member_name == "李娜"
    )
    c = ev.parse_event(
        msg(
            Event="CoreShowChannel",
            Channel="PJSIP/seat1001-1",
            Uniqueid="2.2",
            Linkedid="2.1",
            ChannelStateDesc="Ringing",
            Duration="00:01:05",
        )
    )
    assert isinstance(c, ev.CoreShowChannel) and c.duration == 65 and c.state == "Ringing"
    q = ev.parse_event(
        msg(Event="QueueEntry", Queue="hotline", Channel="PJSIP/carrier-1", Uniqueid="2.1", Wait="7")
    )
    assert isinstance(q, ev.QueueEntry) and q.wait == 7 and q.linkedid == "2.1"


def test_caller_name_escapes_are_undone_once_per_layer():
    # On the wire: From: "<script>alert(\"x\")</script>'\"" ; PJSIP keeps the escapes, AMI adds its own.
    raw = '<script>alert(\\\\\\"x\\\\\\")</script>\\\'\\\\\\"'
    e = ev.parse_event(msg(Event="Newchannel", Uniqueid="1.1", CallerIDName=raw))
    assert e.caller_name == '<script>alert("x")</script>\'"'
    e = ev.parse_event(msg(Event="Newchannel", Uniqueid="1.1", CallerIDName="张三"))
    assert e.caller_name == "张三"


def test_caller_name_loses_bidi_and_control_characters_and_is_bounded():
    # U+202E turns the rest of the line around on the seat's screen; zero-width and C0/C1 controls.
    hostile = "\u202e王秀英\u200b\x07\x1b[31m\u2028\u0085" + "长" * 5000
    for event in ("Newchannel", "AgentCalled", "Hangup"):
        e = ev.parse_event(msg(Event=event, Uniqueid="1.1", Linkedid="1.1", CallerIDName=hostile))
        assert e.caller_name.startswith("王秀英[31m") and len(e.caller_name) == 80
        assert not any(ch in e.caller_name for ch in "\u202e\u200b\x07\x1b\u2028\u0085")
    e = ev.parse_event(msg(Event="Newchannel", Uniqueid="1.1", CallerIDName="\u202d\u2066"))
    assert e.caller_name == ""


AGENT_CALLED_PACKET = "\r\n".join(
    [
        "Event: AgentCalled",
        "Privilege: agent,all",
        "Timestamp: 1765135000.123456",
        "Channel: PJSIP/carrier-00000a1b",
        "ChannelStateDesc: Ring",
        "CallerIDNum: 13800138000",
        'CallerIDName: 张\\"三',
        "ConnectedLineName: <unknown>",
        "AccountCode: ",
        "Context: cc-queue",
        "Exten: 96345",
        "Uniqueid: 1765135000.2001",
        "Linkedid: 1765135000.2001",
        "ChanVariable: CC_CALLER=+8613800138000",
        "ChanVariable: CC_RESIDENT=123456",
        "DestChannel: Local/8001@cc-ring-seat-00000b2c;1",
        "DestChanVariable: CC_CALLER=",
        "DestUniqueid: 1765135000.2003",
        "Queue: hotline",
        "Interface: Local/8001@cc-ring-seat",
        "MemberName: 8001",
    ]
)


def test_a_packet_read_on_demand_gives_the_event_panoramisks_message_gives():
    from panoramisk.message import Message as PanoramiskMessage

    headers = ev.parse_packet(AGENT_CALLED_PACKET)
    via_panoramisk = ev.parse_event(PanoramiskMessage.from_line(AGENT_CALLED_PACKET + "\r\n"))  # type: ignore[arg-type]
    via_packet = ev.parse_event(headers)
    assert isinstance(via_packet, ev.AgentCalled) and via_packet.emitted == 1765135000.123456
    assert ev.as_dict(via_packet) == ev.as_dict(via_panoramisk)
    assert via_packet.variables == {"CC_CALLER": "+8613800138000", "CC_RESIDENT": "123456"}
    assert via_packet.caller_name == '张"三' and via_packet.dest_uniqueid == "1765135000.2003"
    # names in any case, Asterisk's own first; a header that is not there; an empty value
    assert headers["event"] == headers.get("EVENT") == "AgentCalled"
    assert headers.get("Application") is None and "Application" not in headers and "queue" in headers
    assert headers["AccountCode"] == ""
    assert headers["ChanVariable"] == ["CC_CALLER=+8613800138000", "CC_RESIDENT=123456"]
    # a header's name at the end of another's, or inside a value, is not that header
    assert headers.get("Channel") == "PJSIP/carrier-00000a1b" and headers.get("Uniqueid") == "1765135000.2001"
