"""Midnight in China time with real calls: Asterisk and the app run on a clock shifted by
libfaketime (both see the same time, which runs at its normal pace) so that a call enters the
queue before midnight and ends after it. It counts once, on the day it entered the queue
(docs/statistics.md): in that day's report and daily mail, not in the next day's figures; the
wallboard turns to the new day at midnight and counts the next day's calls from zero.

A stack of its own (its Asterisk, app and database beside the session's), so the shifted days
never reach the other tests' figures."""

from __future__ import annotations

import asyncio
import email
import email.header
import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from asterisk_conf import process
from asterisk_conf.installer import locate_asterisk
from asterisk_conf.sipp import SippUAS, place_call
from callcenter.config import CHINA_TZ, Settings
from callcenter.database import migrate, session_scope
from callcenter.i18n import translator
from callcenter.statistics.models import StatCall
from hotline.demo import DEMO_PASSWORD
from hotline.doctor import console_login, open_console_ws
from tests.conftest import free_port, mail_part, missing_part
from tests.e2e.conftest import CALLCONTROL, PORTS, SEAT_PORT, App, next_message

pytestmark = pytest.mark.e2e

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SHIFT = 300  # its ports: the session stack's plus this
SEAT = SEAT_PORT + SHIFT
CALLER = "13919310001"  # 王秀英, a demo resident
# The shifted clock starts at 23:59:25 China time: the stack starts in about 8 s here; the
# first call enters the queue at about 23:59:51 and talks across midnight.
START = (23, 59, 25)
FIRST_CALL_AT = (23, 59, 50)


def _at(day: str, hms: tuple[int, int, int]) -> datetime:
    hour, minute, second = hms
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, second=second, tzinfo=CHINA_TZ)


def _offset_to(day: str) -> int:
    """Seconds to add to the real clock so that it reads ``day`` at START in China now."""
    return round(_at(day, START).timestamp() - time.time())


def _faked(offset: int) -> dict[str, str]:
    # The monotonic clock stays real: timers and timeouts keep their length.
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"{offset:+d}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _stack_settings(data_dir: Path) -> Settings:
    settings = Settings(
        data_dir=data_dir,
        _env_file=None,
        **{k: v + SHIFT for k, v in PORTS.items()},
        **CALLCONTROL,
    )
    migrate(settings)
    (data_dir / "prompts.json").write_text(json.dumps({"welcome": "您好。"}, ensure_ascii=False))
    from callcenter.accounts.models import Account
    from callcenter.directory.models import CallQueue
    from hotline.demo import load_demo

    with session_scope(settings) as s:
        load_demo(s, residents=50, seat_contact_base_port=None, must_change_password=False)
        seat = s.exec(select(Account).where(Account.extension == "1001")).one()
        seat.sip_contact = f"sip:seat1001@127.0.0.1:{SEAT}"
        s.add(seat)
        for queue in s.exec(select(CallQueue)).all():
            queue.wrapup = 0
            s.add(queue)
        s.commit()
    return settings


def _preload_inside_asterisks_root(settings: Settings) -> None:
    """In chroot mode Asterisk loads libraries from its own root: the same library there."""
    install = locate_asterisk(settings)
    if install.mode == "chroot" and install.root is not None:
        inside = install.root / LIBFAKETIME.relative_to("/")
        if not inside.exists():
            inside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(LIBFAKETIME, inside)
            inside.chmod(0o644)


def _stat_days(settings: Settings, linkedid: str) -> list[str]:
    with session_scope(settings) as s:
        return [r.day for r in s.exec(select(StatCall).where(StatCall.linkedid == linkedid)).all()]


async def _wait(pred, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(pred)
        if got:
            return got
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def _mail_for(received: list[bytes], day: str) -> list[bytes]:
    found = []
    for raw in received:
        msg = email.message_from_bytes(raw)
        subject = str(email.header.make_header(email.header.decode_header(msg["Subject"])))
        if subject == f"{translator('zh')('stats.daily_title')} {day}":  # not the orders' notices
            found.append(raw)
    return found


async def test_a_call_across_midnight_counts_once_on_the_day_it_began(asterisk, tmp_path, smtp, monkeypatch):
    if not LIBFAKETIME.exists():
        missing_part("libfaketime (Debian package faketime) shifts the stack's clock")
    port, received = smtp
    settings = _stack_settings(tmp_path / "var")
    day = (datetime.now(CHINA_TZ).date() + timedelta(days=1)).isoformat()  # always ahead
    next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    offset = _offset_to(day)

    def shifted_now() -> datetime:
        return datetime.fromtimestamp(time.time() + offset, CHINA_TZ)

    _preload_inside_asterisks_root(settings)
    with monkeypatch.context() as env:  # Asterisk's process (and its launcher) only
        for k, v in _faked(offset).items():
            env.setenv(k, v)
        process.start(settings)
    app = App(
        settings,
        name="app-midnight",
        env={
            **_faked(offset),
            "CALLCENTER_STATS_REPORT_HOUR": "0",
            "CALLCENTER_STATS_REPORT_RECIPIENTS": json.dumps(["manager@example.org"]),
            "CALLCENTER_SMTP_HOST": "127.0.0.1",
            "CALLCENTER_SMTP_PORT": str(port),
        },
    )
    try:
        app.start()
        supervisor = await console_login(app.base_url, "supervisor", DEMO_PASSWORD)
        board = await open_console_ws(app.base_url, supervisor, path="/ws/wallboard")
        snap, _ = await next_message(board, lambda m: m.get("type") == "snapshot")
        assert snap["day"] == day, (snap["day"], shifted_now())  # the app runs on the shifted clock
        early = (_at(day, FIRST_CALL_AT) - shifted_now()).total_seconds()
        assert early > 0, f"the stack took too long to start: {shifted_now()}"
        await asyncio.sleep(early)

        with SippUAS(port=SEAT, ring_ms=300, talk_ms=None):
            # Enters at about 23:59:51, answered, talks until about 00:00:05.
            first = asyncio.create_task(place_call(settings, did="96345", caller=CALLER, hold_ms=15000))
            await next_message(
                board,
                lambda m: (
                    m.get("type") == "snapshot" and any(s.get("state") == "talking" for s in m["seats"])
                ),
            )
            entered = shifted_now()
            assert entered.date().isoformat() == day, entered
            # Midnight: the board turns to the new day while the call still talks.
            turned, _ = await next_message(
                board, lambda m: m.get("type") == "snapshot" and m["day"] == next_day
            )
            assert any(s.get("state") == "talking" for s in turned["seats"])
            result = await first
            assert result.ok, result.output
            ended = shifted_now()
            assert ended.date().isoformat() == next_day, ended

            linkedid = await _wait(
                lambda: _last_linkedid(settings, CALLER), "no statistics row for the call across midnight"
            )
            assert _stat_days(settings, linkedid) == [day]  # once, on the day it entered
            # The new day's board does not count it; a call after midnight counts there.
            second = await place_call(settings, did="96345", caller=CALLER, hold_ms=2000)
            assert second.ok, second.output
        counted, _ = await next_message(
            board,
            lambda m: (
                m.get("type") == "snapshot"
                and m["day"] == next_day
                and m["queues"].get("hotline", {}).get("offered")
            ),
        )
        assert counted["queues"]["hotline"]["offered"] == 1 and counted["queues"]["hotline"]["answered"] == 1
        assert dict((s["ext"], s["calls_today"]) for s in counted["seats"])["1001"] == 1

        # The reports say the same, day by day.
        for which, offered in ((day, 1), (next_day, 1)):
            r = await supervisor.get(f"/api/stats/report?start={which}&end={which}&by=queue")
            assert r.status_code == 200, r.text
            assert (r.json()["total"]["offered"], r.json()["total"]["answered"]) == (offered, offered), which
        r = await supervisor.get(f"/api/stats/report?start={day}&end={next_day}&by=day")
        assert [(row["key"], row["offered"]) for row in r.json()["rows"]] == [(day, 1), (next_day, 1)]

        # The managers' mail for the day was sent once, after the call ended, and counts it.
        await _wait(lambda: _mail_for(received, day), "no daily mail for the day of the call", timeout=30)
        [mail] = _mail_for(received, day)
        text = mail_part(mail)
        zh = translator("zh")
        assert text.splitlines()[1].startswith(f"{zh('stats.offered')}: 1  {zh('stats.answered')}: 1  "), text
        assert "waits for 1 call(s)" in app.log.read_text()
        await board.close()
    finally:
        app.stop()
        process.stop(settings)


def _last_linkedid(settings: Settings, caller: str) -> str | None:
    with session_scope(settings) as s:
        rows = [r for r in s.exec(select(StatCall)).all() if r.caller.endswith(caller)]
        return rows[-1].linkedid if rows else None
