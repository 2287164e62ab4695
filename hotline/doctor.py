"""``callcenter doctor``: check the running stack hop by hop with one real test call.

Checks the database, Redis (when configured), the AMI login and the FastAGI port, then places
a call from a sipp "resident" to the diagnostics number. A diagnostics seat (its phone is a
sipp answering machine run by the doctor) sits alone in a diagnostics queue, so no real seat
is disturbed. Each hop is timed: INVITE → FastAGI route → seat's phone ringing (AgentCalled) →
pop on the seat's console WebSocket. Exits non-zero on any failure; the last line is JSON.

Diagnostics are not service: the run and its timings are kept apart (``diagnostic_run``, shown on
/admin/diagnostics), the statistics never count the diagnostics queue, and the doctor cleans up
after itself: the test call's record, then the diagnostics number, queue and seat (and so their
place in Asterisk's configuration) are removed when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import redis.asyncio as aioredis
import websockets
from sqlalchemy import delete, text
from sqlmodel import col, select

from asterisk_conf.apply import apply_config
from asterisk_conf.sipp import SippUAS, place_call
from callcenter.accounts.models import Account, QueueMembership, Role
from callcenter.accounts.service import hash_password
from callcenter.ami import actions
from callcenter.ami import events as ev
from callcenter.ami.client import close_manager, open_manager, sender
from callcenter.calls.models import CallRecord, QueueEventRow
from callcenter.config import Settings
from callcenter.database import get_engine, saved_id, session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ids import DIAGNOSTICS_QUEUE
from callcenter.statistics.diagnostics import record_run
from dispatch.holidays import missing_years
from web_console.messages import count_dead_letters

DOCTOR_QUEUE = DIAGNOSTICS_QUEUE
DOCTOR_USER = "ccdoctor"
RECORD_WAIT_S = 5.0  # the call workers write the test call's record just after it ends


def ensure_diagnostics(settings: Settings) -> bool:
    """Create the diagnostics queue, number and seat if missing; True when something was added."""
    added = False
    with session_scope(settings) as s:
        if not s.exec(select(CallQueue).where(CallQueue.name == DOCTOR_QUEUE)).first():
            s.add(CallQueue(name=DOCTOR_QUEUE, title="诊断队列 diagnostics", agent_timeout=10, wrapup=0))
            added = True
        if not s.exec(select(ServiceNumber).where(ServiceNumber.number == settings.doctor_did)).first():
            s.add(
                ServiceNumber(
                    number=settings.doctor_did, title="诊断号码 diagnostics", queue_name=DOCTOR_QUEUE
                )
            )
            added = True
        acc = s.exec(select(Account).where(Account.username == DOCTOR_USER)).first()
        contact = f"sip:seat{settings.doctor_extension}@127.0.0.1:{settings.doctor_sip_port}"
        if acc is not None and not acc.active:
            acc.active = True  # an older version's run disabled it instead of removing it
            s.add(acc)
            added = True
        if acc is None:
            acc = Account(
                username=DOCTOR_USER,
                display_name="诊断座席",
                password_hash=hash_password(secrets.token_urlsafe(24)),
                role=Role.SEAT,
                extension=settings.doctor_extension,
                sip_contact=contact,
            )
            acc.set_sip_password(secrets.token_urlsafe(18), settings.sip_realm)
            s.add(acc)
            s.flush()
            s.add(QueueMembership(account_id=saved_id(acc), queue_name=DOCTOR_QUEUE))
            added = True
        s.commit()
    return added


def remove_diagnostics(settings: Settings) -> bool:
    """Remove the diagnostics number, queue and seat; True when something was removed."""
    with session_scope(settings) as s:
        removed = 0
        acc = s.exec(select(Account).where(Account.username == DOCTOR_USER)).first()
        removed += (
            s.connection()
            .execute(delete(QueueMembership).where(col(QueueMembership.queue_name) == DOCTOR_QUEUE))
            .rowcount
        )
        if acc is not None:
            s.connection().execute(delete(QueueMembership).where(col(QueueMembership.account_id) == acc.id))
            s.delete(acc)
            removed += 1
        removed += (
            s.connection()
            .execute(delete(ServiceNumber).where(col(ServiceNumber.number) == settings.doctor_did))
            .rowcount
        )
        removed += (
            s.connection().execute(delete(CallQueue).where(col(CallQueue.name) == DOCTOR_QUEUE)).rowcount
        )
        s.commit()
    return removed > 0


async def forget_test_call(settings: Settings, linkedid: str) -> bool:
    """Delete the test call's record and queue events once the call workers wrote them (its
    timings are in the run's report and its queue stay in the diagnostics queue's calls)."""

    def forget() -> int:
        with session_scope(settings) as s:
            n = (
                s.connection()
                .execute(delete(CallRecord).where(col(CallRecord.linkedid) == linkedid))
                .rowcount
            )
            s.connection().execute(delete(QueueEventRow).where(col(QueueEventRow.linkedid) == linkedid))
            s.commit()
        return int(n or 0)

    deadline = time.monotonic() + RECORD_WAIT_S
    while True:
        if await asyncio.to_thread(forget):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)


def _reset_doctor_password(settings: Settings) -> str:
    password = secrets.token_urlsafe(18)
    with session_scope(settings) as s:
        acc = s.exec(select(Account).where(Account.username == DOCTOR_USER)).one()
        acc.password_hash = hash_password(password)
        s.add(acc)
        s.commit()
    return password


async def console_login(base_url: str, username: str, password: str, patience_s: float = 30.0):
    """Log in like a browser does (CSRF token from the form); return the httpx client. A 503
    (the database busy or restarting) is tried again after its Retry-After, for ``patience_s``."""
    client = httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=10)
    deadline = time.monotonic() + patience_s
    try:
        while True:
            page = await client.get("/login")
            m = re.search(r'name="csrf" value="([^"]+)"', page.text)
            if m:
                resp = await client.post(
                    "/login", data={"username": username, "password": password, "csrf": m.group(1)}
                )
                if resp.status_code in (302, 303):
                    return client
            else:
                resp = page
            if resp.status_code != 503 or time.monotonic() > deadline:
                if not m:
                    raise RuntimeError(f"login page has no CSRF token (HTTP {page.status_code})")
                raise RuntimeError(f"login as {username} failed: HTTP {resp.status_code}")
            retry = resp.headers.get("Retry-After", "1")
            await asyncio.sleep(min(5.0, float(retry)) if retry.isdigit() else 1.0)
    except BaseException:
        await client.aclose()
        raise


async def open_console_ws(base_url: str, client, path: str = "/ws/console") -> Any:
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    ws_url = base_url.replace("http", "ws", 1) + path
    return await websockets.connect(ws_url, additional_headers={"Cookie": cookie}, open_timeout=10)


class Hops:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.linkedid = ""
        self.route_at: float | None = None


async def run_doctor(settings: Settings) -> int:
    report: dict[str, Any] = {"doctor": "fail"}
    ok = True

    def step(name: str, passed: bool, detail: str = "") -> None:
        nonlocal ok
        ok = ok and passed
        print(f"{'✔' if passed else '✘'} {name}{': ' + detail if detail else ''}", flush=True)

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
        report["db_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        step("database", True, settings.resolved_database_url().split("@")[-1])
    except Exception as exc:
        step("database", False, str(exc))
        print(json.dumps(report))
        return 1

    # The holiday calendar: a warning (the service runs; deadlines count weekdays only).
    missing = await asyncio.to_thread(missing_years, settings)
    report["calendar_missing"] = missing
    if missing:
        years = ", ".join(map(str, missing))
        print(f"⚠ holiday calendar: no holidays for {years} (enter them at /admin/calendar)", flush=True)
    else:
        step("holiday calendar", True)

    # Dead letters: a warning (each waits for a supervisor's retry on the messaging desk).
    dead = await asyncio.to_thread(count_dead_letters, settings)
    report["dead_letters"] = dead
    if any(dead.values()):
        counts = ", ".join(f"{kind} {n}" for kind, n in dead.items() if n)
        print(f"⚠ messages that failed: {counts} (see and retry them at /admin/messages)", flush=True)
    else:
        step("messages", True, "none failed")

    if settings.redis_url:
        try:
            r = aioredis.from_url(settings.redis_url)
            t0 = time.perf_counter()
            await r.ping()
            report["redis_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            await r.aclose()
            step("redis", True)
        except Exception as exc:
            step("redis", False, str(exc))

    hops = Hops()

    def on_event(_m, msg) -> None:
        event = ev.parse_event(msg)
        if isinstance(event, ev.Newchannel) and event.exten == settings.doctor_did and not hops.linkedid:
            hops.t["newchannel"] = event.emitted
            hops.linkedid = event.linkedid
        elif isinstance(event, ev.AgentCalled) and hops.linkedid and event.linkedid == hops.linkedid:
            hops.t["agent_called"] = event.emitted
            with contextlib.suppress(ValueError):
                hops.route_at = float(event.variables.get("CC_ROUTE_AT", ""))

    t0 = time.perf_counter()
    try:
        manager = await open_manager(settings, on_event, timeout=10)
        report["ami_login_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        step("AMI login", True, f"{settings.ami_host}:{settings.ami_port}")
    except TimeoutError:
        step("AMI login", False, "no login within 10 s (is Asterisk running? `callcenter asterisk status`)")
        _record(settings, started, report, "")
        print(json.dumps(report))
        return 1

    try:
        version = await sender(manager)(actions.core_settings())
        report["asterisk_version"] = str(version.raw.get("AsteriskVersion", "")) if version.ok else ""
        step("Asterisk version", version.ok, report["asterisk_version"] or str(version.message))
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not stop here
        step("Asterisk version", False, str(exc))

    if ensure_diagnostics(settings):
        # The diagnostics number, queue and seat are new (or were put away): into Asterisk's
        # configuration first.
        try:
            await apply_config(settings)
            step("diagnostics number configured", True, settings.doctor_did)
        except Exception as exc:
            step("diagnostics number configured", False, str(exc))

    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection(settings.agi_host, settings.agi_port), 3)
        w.close()
        step("FastAGI port", True, f"{settings.agi_host}:{settings.agi_port}")
    except (OSError, TimeoutError) as exc:
        step("FastAGI port", False, f"{exc} (is `callcenter serve` running?)")

    base_url = f"http://{settings.web_host}:{settings.web_port}"
    ws = None
    try:
        client = await console_login(base_url, DOCTOR_USER, _reset_doctor_password(settings))
        ws = await open_console_ws(base_url, client)
        step("console WebSocket", True, base_url)
    except Exception as exc:
        step("console WebSocket", False, str(exc))

    pop_at: float | None = None
    answered = False
    if ws is not None:
        # The diagnostics seat answers after 1 s and hangs up after 0.5 s; the caller waits for that.
        uas = SippUAS(port=settings.doctor_sip_port, ring_ms=1000, talk_ms=500)
        uas.start()
        try:
            call = asyncio.create_task(
                place_call(
                    settings,
                    did=settings.doctor_did,
                    caller="13800000000",
                    caller_name="诊断",
                    source_ip=settings.carrier_match,
                    hold_ms=45000,
                )
            )
            deadline = time.time() + 45
            while pop_at is None and time.time() < deadline:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.time()))
                except TimeoutError:
                    break
                msg = json.loads(raw)
                if msg.get("type") == "pop" and msg.get("did") == settings.doctor_did:
                    pop_at = time.time()
            result = await asyncio.wait_for(call, 60)
            answered = bool(getattr(result, "ok", result))
        finally:
            uas.stop()
            await ws.close()
            await client.aclose()

    t = hops.t
    if "newchannel" in t and hops.route_at:
        report["invite_to_route_ms"] = round((hops.route_at - t["newchannel"]) * 1000, 1)
    step(
        "INVITE → FastAGI route",
        hops.route_at is not None,
        f"{report.get('invite_to_route_ms', '?')} ms"
        if hops.route_at
        else "the route did not run for the test call",
    )
    if hops.route_at and "agent_called" in t:
        report["route_to_agent_called_ms"] = round((t["agent_called"] - hops.route_at) * 1000, 1)
    step(
        "route → seat's phone ringing (AgentCalled)",
        "agent_called" in t,
        f"{report.get('route_to_agent_called_ms', '?')} ms (includes the welcome prompt)",
    )
    if pop_at and "agent_called" in t:
        report["agent_called_to_pop_ms"] = round((pop_at - t["agent_called"]) * 1000, 1)
    step(
        "ringing → pop on the console WebSocket",
        pop_at is not None and "agent_called" in t,
        f"{report.get('agent_called_to_pop_ms', '?')} ms",
    )
    step("test call answered and ended", answered)
    # Clean up: the test call's record, then the diagnostics number, queue and seat.
    if hops.linkedid and not await forget_test_call(settings, hops.linkedid):
        print(f"! the test call's record ({hops.linkedid}) was not written within {RECORD_WAIT_S:g} s")
    if remove_diagnostics(settings):
        try:
            await apply_config(settings)
            step("diagnostics number removed", True, settings.doctor_did)
        except Exception as exc:
            step("diagnostics number removed", False, str(exc))
    close_manager(manager)
    report["doctor"] = "ok" if ok else "fail"
    _record(settings, started, report, hops.linkedid)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if ok else 1


def _record(settings: Settings, started: datetime, report: dict[str, Any], linkedid: str) -> None:
    """The run and its timings, on the diagnostics page (never in the service figures)."""
    try:
        with session_scope(settings) as s:
            record_run(s, started, report, linkedid)
            s.commit()
    except Exception as exc:  # the report is printed either way
        print(f"! run not recorded: {exc}", flush=True)
