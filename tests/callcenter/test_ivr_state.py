"""The live model and the IVR: the menu choice from channel variables, a seat's own queue tried
first for a returning caller (not a queue of its own on the wallboard), out-of-hours hang-ups."""

from callcenter.ami import events as ev
from callcenter.calls.notifier import pop_payload
from callcenter.calls.service import record_row
from callcenter.calls.state import Identified, LiveModel

CALLER = {"channel": "PJSIP/carrier-00000001", "uniqueid": "100.1", "linkedid": "100.1"}


def start(m: LiveModel, at=1000.0) -> None:
    m.apply(
        ev.Newchannel(**CALLER, caller_num="13912345678", exten="96346", context="from-carrier", received=at)
    )
    m.identify(
        Identified(linkedid="100.1", caller="+8613912345678", did="96346", source="carrier", queue="hotline")
    )


def test_menu_choice_and_the_seats_own_queue_first():
    m = LiveModel()
    start(m)
    variables = {"CC_IVR_CHOICE": "1", "CC_QUEUE": "elderly"}
    m.apply(ev.QueueCallerJoin(**CALLER, queue="cc-seat-1001", variables=variables, received=1005.0))
    call = m.calls["100.1"]
    assert call.ivr_choice == "1" and call.queue == "elderly" and call.queued_at == 1005.0
    # The seat was not free in time: the skill queue; the wait still counts from the first join.
    m.apply(ev.QueueCallerJoin(**CALLER, queue="elderly", variables=variables, received=1015.0))
    assert call.queue == "elderly" and call.queued_at == 1005.0
    m.apply(
        ev.AgentConnect(
            **CALLER,
            queue="elderly",
            interface="PJSIP/seat1002",
            dest_channel="PJSIP/seat1002-00000002",
            received=1020.0,
        )
    )
    call.ivr_label, call.ivr_category = "老年服务", "养老服务"
    pop = pop_payload(call, "1002")
    assert (pop["ivr_choice"], pop["ivr_label"], pop["ivr_category"], pop["queue"]) == (
        "1",
        "老年服务",
        "养老服务",
        "elderly",
    )
    assert call.wait_s == 15.0
    # The seat's own queue never shows as a queue of the seat.
    assert m.apply(ev.QueueMemberStatus(queue="cc-seat-1001", interface="PJSIP/seat1001", status=1)) == []
    assert "cc-seat-1001" not in m.snapshot()["queues"]


def test_unchecked_choices_are_ignored_and_out_of_hours_is_kept_from_the_hangup():
    m = LiveModel()
    start(m)
    m.apply(
        ev.QueueCallerJoin(**CALLER, queue="hotline", variables={"CC_IVR_CHOICE": "1;evil"}, received=1005.0)
    )
    assert m.calls["100.1"].ivr_choice == ""
    m2 = LiveModel()
    start(m2)
    effects = m2.apply(ev.Hangup(**CALLER, variables={"CC_IVR_CHOICE": "voicemail"}, received=1030.0))
    record = [e.call for e in effects if e.kind == "record"][0]
    row = record_row(record)
    assert row["ivr_choice"] == "voicemail" and row["outcome"] == "ivr"
