"""Missed calls called back (漏接回拨) through the real Asterisk: a resident who hangs up after
waiting 10 s is called back by the engine as soon as a seat is free, the seat's phone first,
then the resident's; a resident who calls again first closes the item."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.callcontrol.callbacks import add_followup_task, finish_task, waiting_callbacks
from callcenter.callcontrol.models import Callback
from callcenter.calls.models import CallRecord
from callcenter.clock import utcnow
from callcenter.database import session_scope
from tests.e2e.conftest import OUTSIDE_PORT, SEAT_PORT
from tests.e2e.test_callbacks import pause, wait_row
from tests.e2e.test_console_browser import login_page

pytestmark = pytest.mark.e2e


def _restart(app, **update) -> None:
    """The app again with these settings (the child process reads them from its environment:
    the stack's own keys from the settings, the business clock from CALLCENTER_CLOCK)."""
    app.stop()
    app.settings = app.settings.model_copy(update=update)
    if "clock" in update:
        os.environ["CALLCENTER_CLOCK"] = update["clock"]
    app.start()


def _close_open_items(settings) -> None:
    """Items left by other tests' calls are not this module's to dial."""
    with session_scope(settings) as s:
        for row in s.exec(select(Callback).where(Callback.status == "waiting")).all():
            row.status = "done"
            s.add(row)
        s.commit()


@pytest.fixture(scope="module")
async def auto_app(app):
    _close_open_items(app.settings)
    await asyncio.to_thread(_restart, app, missed_callbacks_auto=True)
    yield app
    _close_open_items(app.settings)
    await asyncio.to_thread(_restart, app, missed_callbacks_auto=False)


async def test_an_abandoned_call_is_called_back_seat_first(auto_app, ami):
    settings = auto_app.settings
    caller = "13800003333"
    await pause(ami, True)  # no seat free: the caller waits, then gives up after 10 s
    try:
        result = await place_call(settings, did="96345", caller=caller, hold_ms=10000)
        assert result.ok, result.output
        missed = await wait_row(settings, Callback, lambda r: r.phone == "+86" + caller, timeout=20)
        assert (missed.kind, missed.status, missed.queue, missed.did) == (
            "abandoned",
            "waiting",
            "hotline",
            "96345",
        )
        abandon = ami.seen("QueueCallerAbandon")[-1]
        assert missed.linkedid == abandon["Linkedid"]
        # A second missed call from the same number joins the item.
        assert (await place_call(settings, did="96345", caller=caller, hold_ms=3000)).ok
        await wait_row(settings, Callback, lambda r: r.id == missed.id and r.missed_count == 2, timeout=20)
    finally:
        mark = len(ami.events)
        freed = time.monotonic()
        await pause(ami, False)
    # A seat is free: its phone rings first, then the resident's, who hears why.
    async with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=4000), SippUAS(port=OUTSIDE_PORT, ring_ms=500):
        outside = await ami.wait_for(
            lambda e: (
                e in ami.events[mark:]
                and e.get("Event") == "Newchannel"
                and e.get("Channel", "").startswith("PJSIP/cc-outbound-")
            ),
            timeout=60,
        )
        dialled_after = time.monotonic() - freed
        seat_leg = [
            e
            for e in ami.events[mark:]
            if e.get("Event") == "Newchannel" and e.get("Channel", "").startswith("PJSIP/seat1001-")
        ]
        assert seat_leg and seat_leg[0]["Linkedid"] == outside["Linkedid"]
        assert ami.events.index(seat_leg[0]) < ami.events.index(outside)
        done = await wait_row(
            settings, Callback, lambda r: r.id == missed.id and r.status == "done", timeout=40
        )
    assert done.outcome == "answered" and done.seat == "1001" and done.attempts == 1
    assert done.call_linkedid == outside["Linkedid"] and done.linkedid == missed.linkedid
    assert done.first_dialled_at is not None and dialled_after < 30
    # The call back's own call record, written when it ended, shows on the missed-call item.
    record = await wait_row(settings, CallRecord, lambda r: r.linkedid == done.call_linkedid, timeout=30)
    [item] = [c for c in await asyncio.to_thread(waiting_callbacks, settings) if c["id"] == missed.id]
    assert item["status"] == "done" and item["call"]["linkedid"] == record.linkedid
    assert item["call"]["duration_s"] is not None and item["call"]["duration_s"] > 0


async def test_calling_again_closes_the_item(auto_app, ami):
    settings = auto_app.settings
    caller = "13800004444"
    await pause(ami, True)
    try:
        assert (await place_call(settings, did="96345", caller=caller, hold_ms=4000)).ok
        item = await wait_row(settings, Callback, lambda r: r.phone == "+86" + caller, timeout=20)
        # Opening hours are checked before dialling: this item waits while the seat is paused.
    finally:
        await pause(ami, False)
    # The resident calls again and a seat answers before the callback: the item is closed. (The
    # worker may win the race and call back first: the resident's phone answers, and the item is
    # done as answered.)
    async with SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=1000), SippUAS(port=OUTSIDE_PORT, ring_ms=300):
        assert (await place_call(settings, did="96345", caller=caller, hold_ms=3000)).ok
        done = await wait_row(
            settings, Callback, lambda r: r.id == item.id and r.status == "done", timeout=30
        )
    assert done.outcome in ("called_again", "answered")


async def test_an_out_of_hours_call_is_called_back_at_opening_time(auto_app, ami):
    """96346 keeps office hours (demo data): a call at night hears the closed-hours message and
    hangs up; the item waits through the night and is dialled once the (injected) clock opens."""
    settings = auto_app.settings
    caller = "13800005555"
    await asyncio.to_thread(_restart, auto_app, clock="2026-12-07T22:00:00")  # a Monday night
    try:
        assert (await place_call(settings, did="96346", caller=caller, hold_ms=3000)).ok
        item = await wait_row(settings, Callback, lambda r: r.phone == "+86" + caller, timeout=20)
        assert (item.kind, item.status, item.did, item.queue) == ("closed", "waiting", "96346", "hotline")
        await asyncio.sleep(3)  # the worker polls every second: nothing is dialled at night
        with session_scope(settings) as s:
            assert s.get(Callback, item.id).attempts == 0
        mark = len(ami.events)
        async with (
            SippUAS(port=SEAT_PORT, ring_ms=300, talk_ms=2000),
            SippUAS(port=OUTSIDE_PORT, ring_ms=300),
        ):
            await asyncio.to_thread(_restart, auto_app, clock="2026-12-08T08:31:00")  # Tuesday, open
            outside = await ami.wait_for(
                lambda e: (
                    e in ami.events[mark:]
                    and e.get("Event") == "Newchannel"
                    and e.get("Channel", "").startswith("PJSIP/cc-outbound-")
                ),
                timeout=60,
            )
            done = await wait_row(
                settings, Callback, lambda r: r.id == item.id and r.status == "done", timeout=40
            )
        assert done.outcome == "answered" and done.call_linkedid == outside["Linkedid"]
    finally:
        await asyncio.to_thread(_restart, auto_app, clock="")
        os.environ.pop("CALLCENTER_CLOCK", None)


@pytest.mark.browser
async def test_a_seat_sees_the_task_in_the_console_and_marks_it_done(app, browser):
    """A 回访 the chain could not complete waits in the seat's callbacks list, with why, until
    the seat marks it done."""
    with session_scope(app.settings) as s:
        task = add_followup_task(s, "+8613800006666", "GD20261205-00042", "no_reply")
        # and a missed call whose calls back all went unanswered, also a seat's task now
        missed = Callback(
            phone="+8613800007777", queue="hotline", kind="abandoned", status="task", missed_count=2
        )
        s.add(missed)
        s.commit()
        task_id, missed_id = task.id, missed.id
    # The supervisor's wallboard lists the missed calls.
    boss = await login_page(browser, app, "supervisor")
    await boss.goto(app.base_url + "/wallboard")
    on_board = boss.locator('#missed tr[data-status="task"]', has_text="+8613800007777")
    await on_board.wait_for(timeout=20000)
    assert "待座席处理" in await on_board.inner_text()
    await boss.close()
    seat = await login_page(browser, app, "seat1001")
    listed = seat.locator(f'#cc-callbacks tr[data-id="{missed_id}"][data-kind="abandoned"]')
    await listed.wait_for(timeout=20000)
    assert "漏接回拨（2次未接）" in await listed.inner_text()
    row = seat.locator(f'#cc-callbacks tr[data-id="{task_id}"][data-status="task"]')
    await row.wait_for(timeout=20000)
    text = await row.inner_text()
    assert "回访未联系上" in text and "GD20261205-00042" in text and "短信评价未回复" in text
    await row.locator('button[data-action="task-done"]').click()
    await row.wait_for(state="detached", timeout=10000)
    with session_scope(app.settings) as s:
        done = s.get(Callback, task_id)
        assert (done.status, done.seat) == ("done", "1001")
        finish_task(s, missed_id, "1001", utcnow())  # not left for other tests' lists
        s.commit()
    await seat.close()
