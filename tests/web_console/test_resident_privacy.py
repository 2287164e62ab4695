"""Residents' sensitive data (PIPL): a seat sees it for the residents of its calls and orders;
anyone else's needs a stated reason, is rate-limited and audited, and a burst of such lookups
alerts the supervisors on the wallboard socket and by e-mail (a real aiosmtpd server)."""

from __future__ import annotations

import asyncio
import email
import email.header
import json
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from websockets.asyncio.client import connect as ws_connect

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope
from callcenter.mail import MailWorker
from callcenter.residents.models import ElderlyProfile, HouseholdMember, Resident
from tests.conftest import free_port


def _residents(settings, n: int) -> list[int]:
    with session_scope(settings) as s:
        rows = [
            Resident(
                name=f"居民{i}",
                phone=f"+86139193100{i:02d}",
                phone2=f"+86138000011{i:02d}",
                id_number=f"6201021945010{i:02d}234",
                address=f"培黎街{i}号",
                lives_alone=True,
                emergency_contact="女儿 13700000000",
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        for r in rows:
            s.add(
                ElderlyProfile(
                    resident_id=r.id, health_notes="高血压 糖尿病", caregiver_phone="+8613900001111"
                )
            )
            s.add(HouseholdMember(resident_id=r.id, name="李建华", relation="儿子", phone="+8613800001234"))
        s.commit()
        return [r.id for r in rows]


def _audit(settings, actor: str) -> list[tuple[str, str, dict]]:
    with session_scope(settings) as s:
        rows = s.exec(
            select(AuditEntry)
            .where(AuditEntry.actor == actor, col(AuditEntry.action).startswith("resident."))
            .order_by(col(AuditEntry.id))
        ).all()
        return [(e.action, e.target, e.detail) for e in rows]


async def _recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_a_seat_bulk_reading_unlinked_residents_is_refused_limited_audited_and_reported(live):
    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    settings = live.settings
    settings.smtp_host, settings.smtp_port = "127.0.0.1", port
    settings.supervisor_emails = ["duty@example.org"]
    settings.resident_reveals_per_hour = 3
    settings.resident_burst_lookups = 5
    ids = _residents(settings, 8)
    seat = await live.login("seat1001")
    sup = await live.login("super")
    wallboard_url = live.ws_url.replace("/ws/console", "/ws/wallboard")
    try:
        async with ws_connect(
            wallboard_url,
            additional_headers={"Cookie": live.cookie_header(sup)},
            origin=live.base_url,
            proxy=None,
            open_timeout=5,
        ) as board:
            assert (await _recv_json(board))["topic"] == "wallboard.ready"
            # Without a reason: the page shows who it is, nothing sensitive, and asks for a reason;
            # the identity API refuses.
            for rid in ids[:3]:
                page = await seat.get(f"/residents/{rid}")
                assert page.status_code == 200
                for secret in ("高血压", "李建华", "+8613800001234", "13919310", "培黎街", "女儿"):
                    assert secret not in page.text, secret
                assert 'id="reveal-form"' in page.text and "6201**********" in page.text
                refused = await seat.get(f"/api/residents/{rid}/identity")
                assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
                assert "id_number" not in refused.json()
            # 6 lookups so far: the fifth alerted the supervisors' wallboard.
            alert = await _recv_json(board)
            assert alert["topic"] == "wallboard" and alert["type"] == "resident_lookups"
            assert alert["actor"] == "seat1001" and alert["lookups"] == 5
            page = await seat.get("/console")
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            headers = {"X-CSRF-Token": csrf}
            # A reason too short is refused and not counted against the limit.
            short = await seat.post(
                f"/api/residents/{ids[0]}/identity", json={"reason": " a "}, headers=headers
            )
            assert short.status_code == 422 and short.json()["code"] == "invalid"
            # With a reason: allowed up to the hourly limit, then 429.
            for rid in ids[:3]:
                ok = await seat.post(
                    f"/api/residents/{rid}/identity", json={"reason": "居民来电反映紧急情况"}, headers=headers
                )
                assert ok.status_code == 200 and ok.json()["id_number"].endswith("234")
            limited = await seat.post(
                f"/api/residents/{ids[3]}/identity", json={"reason": "居民来电反映紧急情况"}, headers=headers
            )
            assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
            assert "id_number" not in limited.json()
            # The page form too: over the limit, the page says so and still shows nothing.
            form = await seat.post(
                f"/residents/{ids[4]}/reveal", data={"csrf": csrf, "reason": "核实地址信息"}
            )
            assert (
                form.status_code == 429 and "高血压" not in form.text and 'id="resident-error"' in form.text
            )
            # 10 unlinked lookups now: the second alert.
            alert = await _recv_json(board)
            assert alert["type"] == "resident_lookups" and alert["lookups"] == 10
        # The reason opened that record's page for a while (and its edits).
        page = await seat.get(f"/residents/{ids[0]}")
        assert "高血压" in page.text and "李建华" in page.text
        # Every read is in the audit log, the reasons with it.
        trail = _audit(settings, "seat1001")
        actions = [a for a, _, _ in trail]
        assert actions.count("resident.lookup_denied") == 6
        assert actions.count("resident.reveal") == 3 and actions.count("resident.reveal_refused") == 2
        assert {d.get("reason") for a, _, d in trail if a == "resident.reveal"} == {"居民来电反映紧急情况"}
        assert trail[-1][0] == "resident.view" and trail[-1][2]["basis"] == "reason"
        # The supervisors' e-mail goes through the outbox to the SMTP server.
        worker = MailWorker(settings)
        assert await worker.run_once() == 2
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        controller.stop()
        await seat.aclose()
        await sup.aclose()
    assert len(received) == 2
    msg = email.message_from_bytes(received[0])
    subject = str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    assert "seat1001" in subject and msg["To"] == "duty@example.org"


async def test_a_seat_sees_the_resident_of_its_current_call(live):
    settings = live.settings
    rid, other = _residents(settings, 2)
    seat = await live.login("seat1001")
    try:
        async with live.connect(live.cookie_header(seat)) as ws:
            assert (await _recv_json(ws))["topic"] == "console.ready"
            assert (await seat.get(f"/api/residents/{rid}/identity")).status_code == 403
            pop = {"type": "pop", "linkedid": "1764300000.7", "state": "ringing", "resident": {"id": rid}}
            await live.bus.publish("seat.1001", pop)
            assert (await _recv_json(ws))["type"] == "pop"
            got = await seat.get(f"/api/residents/{rid}/identity")
            assert got.status_code == 200 and got.json()["id_number"] == "620102194501000234"
            assert got.headers["cache-control"] == "no-store"
            page = await seat.get(f"/residents/{rid}")
            assert "高血压" in page.text and "+8613800001234" in page.text
            # Another resident is still closed.
            assert (await seat.get(f"/api/residents/{other}/identity")).status_code == 403
        trail = _audit(settings, "seat1001")
        assert ("resident.view_identity", f"resident:{rid}", {"basis": "call"}) in trail
        assert ("resident.view", f"resident:{rid}", {"basis": "call"}) in trail
    finally:
        await seat.aclose()


def test_recent_calls_and_open_orders_link_a_resident_and_supervisors_are_audited(client, web, db):
    from dispatch.models import WorkOrder

    by_call, by_order, old_call, nobody = _residents(db, 4)
    now = datetime.now(UTC)
    with session_scope(db) as s:
        s.add(CallRecord(linkedid="1764300000.1", seat="1001", resident_id=by_call, started_at=now))
        s.add(
            CallRecord(
                linkedid="1764300000.2", seat="1001", resident_id=old_call, started_at=now - timedelta(days=2)
            )
        )
        s.add(WorkOrder(number="AN-1", resident_id=by_order, created_by="seat1001"))
        s.commit()
    assert web.login(client, "seat1001").status_code == 303
    assert client.get(f"/api/residents/{by_call}/identity").status_code == 200
    assert client.get(f"/api/residents/{by_order}/identity").status_code == 200
    assert client.get(f"/api/residents/{old_call}/identity").status_code == 403
    # Another seat's call does not open it for this one.
    assert web.login(client, "seat1002").status_code == 303
    assert client.get(f"/api/residents/{by_call}/identity").status_code == 403
    assert web.login(client, "super").status_code == 303
    assert client.get(f"/api/residents/{nobody}/identity").status_code == 200
    assert "高血压" in client.get(f"/residents/{nobody}").text
    assert [(a, d) for a, _, d in _audit(db, "super")] == [
        ("resident.view_identity", {"basis": "role"}),
        ("resident.view", {"basis": "role"}),
    ]
    assert _audit(db, "seat1002")[0][0] == "resident.lookup_denied"


def test_list_apis_return_no_sensitive_fields(client, web, db):
    from dispatch.models import WorkOrder

    rid = _residents(db, 1)[0]
    with session_scope(db) as s:
        s.add(WorkOrder(number="AN-2", resident_id=rid, created_by="seat1001", caller_phone="+8613919310000"))
        s.commit()
    for who in ("seat1001", "super"):
        assert web.login(client, who).status_code == 303
        found = client.get("/api/residents", params={"q": "居民"}).json()
        assert found == [{"id": rid, "name": "居民0", "phone": "+86139****0000", "community_id": None}]
        orders = client.get("/api/orders", params={"resident_id": rid}).json()
        assert orders[0]["caller_phone"] == "+86139****0000"
        text = json.dumps(found + orders, ensure_ascii=False)
        for secret in ("620102", "+8613919310000", "+8613800001100", "高血压", "李建华"):
            assert secret not in text


def test_the_current_calls_residents_are_shared_by_web_workers_through_redis(redis_url):
    import redis

    from web_console.resident_access import RedisSeatCalls

    redis.Redis.from_url(redis_url).flushdb()  # the server is shared by the session's tests
    one, other = RedisSeatCalls(redis_url), RedisSeatCalls(redis_url)
    one.remember("1001", 42, ttl_s=60)
    assert other.seen("1001", 42) and not other.seen("1002", 42) and not other.seen("1001", 43)
    assert 0 < other.redis.ttl("cc:seat-call:1001:42") <= 60


def test_a_web_worker_forgets_the_current_calls_residents_once_their_time_is_up():
    from web_console.resident_access import SeatCalls

    now = [1000.0]
    calls = SeatCalls(clock=lambda: now[0])
    calls.remember("1001", 1, ttl_s=60)
    calls.remember("1002", 2, ttl_s=60)
    now[0] += 30
    calls.remember("1001", 1, ttl_s=60)  # popped again: its time starts again
    now[0] += 40  # 1002's is up, 1001's not
    calls.remember("1003", 3, ttl_s=60)
    assert calls.seen("1001", 1) and calls.seen("1003", 3) and not calls.seen("1002", 2)
    assert sorted(calls._seen) == [("1001", 1), ("1003", 3)]  # the expired one is gone from memory
    # A day of pops stays bounded by the ones still in time
    for i in range(1000):
        now[0] += 1
        calls.remember("1004", 100 + i, ttl_s=60)
    assert len(calls._seen) == 61
