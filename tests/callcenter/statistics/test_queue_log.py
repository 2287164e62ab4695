"""Every queue_log line format Asterisk writes, parsed (a table: line → event and fields)."""

from __future__ import annotations

import pytest

from callcenter.statistics.queue_log import EVENT_FIELDS, parse_line

# (line, event, callid, queue, agent, {field: value}) — formats from app_queue.c / app_agent_pool.
CASES = [
    ("1795886631|NONE|NONE|NONE|QUEUESTART|", "QUEUESTART", "NONE", "NONE", "NONE", {}),
    ("1795886631|NONE|NONE|NONE|QUEUESTART", "QUEUESTART", "NONE", "NONE", "NONE", {}),  # 5 fields
    ("1795886632|NONE|NONE|NONE|CONFIGRELOAD|", "CONFIGRELOAD", "NONE", "NONE", "NONE", {}),
    (
        "1795886643|1795886641.0|hotline|NONE|ENTERQUEUE||13014892765|1",
        "ENTERQUEUE",
        "1795886641.0",
        "hotline",
        "NONE",
        {"url": "", "callerid": "13014892765", "position": "1"},
    ),
    (
        "1795886643|1795886641.0|hotline|座席张敏|CONNECT|12|1795886643.17|3",
        "CONNECT",
        "1795886641.0",
        "hotline",
        "座席张敏",
        {"holdtime": "12", "bridged_uniqueid": "1795886643.17", "ringtime": "3"},
    ),
    (
        "1795886700|1795886641.0|hotline|座席张敏|COMPLETECALLER|12|57|1",
        "COMPLETECALLER",
        "1795886641.0",
        "hotline",
        "座席张敏",
        {"holdtime": "12", "calltime": "57", "origposition": "1"},
    ),
    (
        "1795886700|1795886641.0|hotline|座席张敏|COMPLETEAGENT|12|57|1",
        "COMPLETEAGENT",
        "1795886641.0",
        "hotline",
        "座席张敏",
        {"holdtime": "12", "calltime": "57", "origposition": "1"},
    ),
    (
        "1795886650|1795886641.9|hotline|NONE|ABANDON|2|3|30",
        "ABANDON",
        "1795886641.9",
        "hotline",
        "NONE",
        {"position": "2", "origposition": "3", "waittime": "30"},
    ),
    (
        "1795886650|1795886641.9|hotline|NONE|EXITWITHTIMEOUT|1|1|300",
        "EXITWITHTIMEOUT",
        "1795886641.9",
        "hotline",
        "NONE",
        {"position": "1", "origposition": "1", "waittime": "300"},
    ),
    (
        "1795886650|1795886641.9|hotline|NONE|EXITWITHKEY|0|1|1|20",
        "EXITWITHKEY",
        "1795886641.9",
        "hotline",
        "NONE",
        {"key": "0", "position": "1", "origposition": "1", "waittime": "20"},
    ),
    (
        "1795886650|1795886641.9|hotline|NONE|EXITEMPTY|1|1|0",
        "EXITEMPTY",
        "1795886641.9",
        "hotline",
        "NONE",
        {"position": "1", "origposition": "1", "waittime": "0"},
    ),
    (
        "1795886650|1795886641.9|hotline|NONE|WITHDRAW|1|1|42|callback requested",
        "WITHDRAW",
        "1795886641.9",
        "hotline",
        "NONE",
        {"waittime": "42", "info": "callback requested"},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|RINGNOANSWER|15000",
        "RINGNOANSWER",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {"ringtime_ms": "15000"},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|RINGCANCELED|2345",
        "RINGCANCELED",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {"ringtime_ms": "2345"},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|TRANSFER|1002|cc-internal|4|30|1",
        "TRANSFER",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {
            "extension": "1002",
            "context": "cc-internal",
            "holdtime": "4",
            "calltime": "30",
            "origposition": "1",
        },
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|BLINDTRANSFER|96345|cc-incoming|4|30|1",
        "BLINDTRANSFER",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {"extension": "96345", "context": "cc-incoming", "holdtime": "4", "calltime": "30"},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|ATTENDEDTRANSFER|BRIDGE|8f1c-22|4|30|1",
        "ATTENDEDTRANSFER",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {"method": "BRIDGE", "target": "8f1c-22", "holdtime": "4", "calltime": "30", "origposition": "1"},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|ATTENDEDTRANSFER|APP|Voicemail|1002@default|4|31|1",
        "ATTENDEDTRANSFER",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {"method": "APP", "target": "Voicemail|1002@default", "holdtime": "4", "calltime": "31"},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|ATTENDEDTRANSFER|LINK|PJSIP/a-1|PJSIP/b-2|5|32|2",
        "ATTENDEDTRANSFER",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {
            "method": "LINK",
            "target": "PJSIP/a-1|PJSIP/b-2",
            "holdtime": "5",
            "calltime": "32",
            "origposition": "2",
        },
    ),
    (
        "1795886600|MANAGER|hotline|PJSIP/seat1001|ADDMEMBER|",
        "ADDMEMBER",
        "MANAGER",
        "hotline",
        "PJSIP/seat1001",
        {"paused": ""},
    ),
    (
        "1795886600|NONE|hotline|PJSIP/seat1001|ADDMEMBER|PAUSED",
        "ADDMEMBER",
        "NONE",
        "hotline",
        "PJSIP/seat1001",
        {"paused": "PAUSED"},
    ),
    (
        "1795886900|MANAGER|hotline|PJSIP/seat1001|REMOVEMEMBER|",
        "REMOVEMEMBER",
        "MANAGER",
        "hotline",
        "PJSIP/seat1001",
        {},
    ),
    (
        "1795889406|NONE|hotline|座席李娜|PAUSE|用餐",
        "PAUSE",
        "NONE",
        "hotline",
        "座席李娜",
        {"reason": "用餐"},
    ),
    (
        "1795889406|NONE|NONE|座席李娜|PAUSEALL|用餐",
        "PAUSEALL",
        "NONE",
        "NONE",
        "座席李娜",
        {"reason": "用餐"},
    ),
    ("1795889506|NONE|hotline|座席李娜|UNPAUSE|", "UNPAUSE", "NONE", "hotline", "座席李娜", {"reason": ""}),
    ("1795889506|NONE|NONE|座席李娜|UNPAUSEALL|", "UNPAUSEALL", "NONE", "NONE", "座席李娜", {"reason": ""}),
    (
        "1795889506|NONE|hotline|PJSIP/seat1001|PENALTY|3",
        "PENALTY",
        "NONE",
        "hotline",
        "PJSIP/seat1001",
        {"penalty": "3"},
    ),
    (
        "1795889506|1795889500.3|NONE|Agent/1001|AGENTLOGIN|PJSIP/seat1001-00000003",
        "AGENTLOGIN",
        "1795889500.3",
        "NONE",
        "Agent/1001",
        {"channel": "PJSIP/seat1001-00000003"},
    ),
    (
        "1795893106|1795889500.3|NONE|Agent/1001|AGENTLOGOFF|PJSIP/seat1001-00000003|3600",
        "AGENTLOGOFF",
        "1795889500.3",
        "NONE",
        "Agent/1001",
        {"channel": "PJSIP/seat1001-00000003", "logintime": "3600"},
    ),
    (
        "1100000000|NONE|NONE|Agent/1001|AGENTCALLBACKLOGIN|1001@seats",
        "AGENTCALLBACKLOGIN",
        "NONE",
        "NONE",
        "Agent/1001",
        {"extension": "1001@seats"},
    ),
    (
        "1100003600|NONE|NONE|Agent/1001|AGENTCALLBACKLOGOFF|1001@seats|3600|Autologoff",
        "AGENTCALLBACKLOGOFF",
        "NONE",
        "NONE",
        "Agent/1001",
        {"extension": "1001@seats", "logintime": "3600", "reason": "Autologoff"},
    ),
    (
        "1100000000|1100000000.5|hotline|Agent/1001|AGENTDUMP|",
        "AGENTDUMP",
        "1100000000.5",
        "hotline",
        "Agent/1001",
        {},
    ),
    (
        "1795886650|1795886641.9|hotline|座席李娜|SYSCOMPAT|",
        "SYSCOMPAT",
        "1795886641.9",
        "hotline",
        "座席李娜",
        {},
    ),
    (
        "1795886642|1795886641.9|hotline|NONE|DID|96345",
        "DID",
        "1795886641.9",
        "hotline",
        "NONE",
        {"did": "96345"},
    ),
    (
        "1795886642|1795886641.9|hotline|NONE|INFO|CALLBACK|13919310001",
        "INFO",
        "1795886641.9",
        "hotline",
        "NONE",
        {"info": "CALLBACK|13919310001"},
    ),
    # This product's own lines: a static member's login (the engine, AMI QueueLog) and callback
    # in queue (the dialplan's QueueLog, and the engine for a callback given up).
    (
        "1795886600|STATIC|hotline|PJSIP/seat1003|ADDMEMBER|",
        "ADDMEMBER",
        "STATIC",
        "hotline",
        "PJSIP/seat1003",
        {"paused": ""},
    ),
    (
        "1795886650|1795886641.9|hotline|NONE|CALLBACKREQ|1795886641.9",
        "CALLBACKREQ",
        "1795886641.9",
        "hotline",
        "NONE",
        {"linkedid": "1795886641.9"},
    ),
    (
        "1795886700|1795886699.12|hotline|NONE|CALLBACKCALL|1795886641.9",
        "CALLBACKCALL",
        "1795886699.12",
        "hotline",
        "NONE",
        {"linkedid": "1795886641.9"},
    ),
    (
        "1795886760|1795886699.12|hotline|NONE|CALLBACKEND|1795886641.9",
        "CALLBACKEND",
        "1795886699.12",
        "hotline",
        "NONE",
        {"linkedid": "1795886641.9"},
    ),
    (
        "1795887000|1795886641.9|hotline||CALLBACKFAIL|1795886641.9",
        "CALLBACKFAIL",
        "1795886641.9",
        "hotline",
        "",
        {"linkedid": "1795886641.9"},
    ),
    # Fractional seconds, and the realtime back end's date form (UTC).
    (
        "1795886643.123456|1795886641.0|hotline|NONE|ENTERQUEUE||13014892765|1",
        "ENTERQUEUE",
        "1795886641.0",
        "hotline",
        "NONE",
        {"callerid": "13014892765"},
    ),
    (
        "2026-11-28 10:00:00.250000|1795886641.0|hotline|NONE|ABANDON|1|1|7",
        "ABANDON",
        "1795886641.0",
        "hotline",
        "NONE",
        {"waittime": "7"},
    ),
    # An event this parser has no table entry for still parses (kept, not counted).
    (
        "1795886650|1795886641.9|hotline|NONE|CUSTOMEVENT|a|b",
        "CUSTOMEVENT",
        "1795886641.9",
        "hotline",
        "NONE",
        {},
    ),
]


@pytest.mark.parametrize(("line", "event", "callid", "queue", "agent", "fields"), CASES)
def test_line(line, event, callid, queue, agent, fields):
    e = parse_line(line + "\n")
    assert e is not None
    assert (e.event, e.callid, e.queue, e.agent) == (event, callid, queue, agent)
    for name, value in fields.items():
        assert e.get(name) == value, name


def test_every_event_in_the_table_is_covered():
    covered = {c[1] for c in CASES}
    assert set(EVENT_FIELDS) <= covered


def test_timestamps():
    assert parse_line("1795886643|a|q|NONE|ENTERQUEUE||1|1").ts == 1795886643.0
    assert parse_line("1795886643.5|a|q|NONE|ENTERQUEUE||1|1").ts == 1795886643.5
    assert parse_line("2026-11-28 10:00:00.250000|a|q|NONE|ABANDON|1|1|7").ts == 1795860000.25
    e = parse_line("1795886650|c|q|m|CONNECT|12|x|3")
    assert e.num("holdtime") == 12.0 and e.num("nope") is None and e.num("bridged_uniqueid") is None


@pytest.mark.parametrize(
    "line", ["", "\n", "garbage", "1|2|3|4", "x|a|q|NONE|ENTERQUEUE||1|1", "1|a|q|NONE||"]
)
def test_not_a_line(line):
    assert parse_line(line) is None
