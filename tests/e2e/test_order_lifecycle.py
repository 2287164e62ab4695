"""The whole life of an order, end to end (dispatch + messaging):

a real call through Asterisk → the pop on the seat's console → the seat creates the order from the
pop → routing picks the outlet → the outbox sends the outlet's SMS through the real Twilio SDK to a
local server speaking Twilio's Messages API → that server posts a signed reply ``签收 <code>`` to
the inbound webhook → accepted → ``办结 <code> 说明`` → resolved, the resident's service archive
written → the follow-up (回访, by the transition on the order page: this branch has no follow-up
call) → closed (归档) → the grid event record pushed, signed, to a local receiver.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from asterisk_conf.sipp import SippUAS, place_call
from callcenter.database import session_scope
from callcenter.directory.models import Outlet
from callcenter.records.service import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from callcenter.residents.models import ServiceArchive
from dispatch.models import Category, OrderHistory, Status, WorkOrder
from sms.testing import FakeTwilio
from tests.e2e.conftest import SEAT_PORT, next_message, seat_console

pytestmark = pytest.mark.e2e


class Receiver:
    """The grid platform: records every signed POST it receives."""

    def __init__(self, secret: str) -> None:
        self.posts: list[dict] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(
                    secret,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                received.append(
                    {"ok": ok, "key": self.headers.get("Idempotency-Key"), "body": json.loads(body)}
                )
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/grid"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def lifecycle_app(app, monkeypatch):
    """The session's app, restarted to send SMS through the Twilio stand-in and push grid records."""
    receiver = Receiver(app.settings.webhook_secret)
    twilio = FakeTwilio().start()
    for key, value in twilio.settings_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CALLCENTER_GRID_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("CALLCENTER_PUBLIC_BASE_URL", app.base_url)
    app.stop()
    app.start()
    try:
        yield app, twilio, receiver
    finally:
        app.stop()
        monkeypatch.undo()
        app.start()  # as the other tests expect it
        twilio.stop()
        receiver.close()


async def _wait(pred, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(pred)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _order(settings, number: str) -> WorkOrder:
    with session_scope(settings) as s:
        return s.exec(select(WorkOrder).where(WorkOrder.number == number)).one()


async def test_order_lifecycle_end_to_end(lifecycle_app):
    app, twilio, receiver = lifecycle_app
    settings = app.settings
    with session_scope(settings) as s:
        repair = s.exec(select(Category).where(Category.code == "LIFE-REPAIR")).one()
        station = s.exec(select(Outlet).where(Outlet.name == "物业维修服务站")).one()
    client, ws = await seat_console(app, "seat1001")
    try:
        # 1. A real call from 王秀英; her pop reaches seat 1001's console.
        with SippUAS(port=SEAT_PORT, ring_ms=500, talk_ms=0):
            call = asyncio.create_task(place_call(settings, did="96345", caller="13919310001", hold_ms=6000))
            try:
                pop, _ = await next_message(
                    ws, lambda m: m.get("type") == "pop" and (m.get("resident") or {}).get("name") == "王秀英"
                )
                resident = pop["resident"]
                # 2. The seat creates the order from the pop; routing suggests the outlet.
                page = await client.get("/console")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                sug = (
                    await client.get(
                        f"/api/orders/suggest?category_id={repair.id}&community_id={resident['community_id']}"
                    )
                ).json()
                assert sug["outlet"]["id"] == station.id
                r = await client.post(
                    "/api/orders",
                    json={
                        "linkedid": pop["linkedid"],
                        "resident_id": resident["id"],
                        "caller_phone": pop["caller"],
                        "order_type": "求助",
                        "category_id": repair.id,
                        "community_id": resident["community_id"],
                        "address": resident["address"],
                        "summary": "厨房水管漏水，请上门维修",
                        "outlet_id": sug["outlet"]["id"],
                    },
                    headers={"X-CSRF-Token": token},
                )
                assert r.status_code == 201, r.text
                created = r.json()
            finally:
                result = await call  # never leave a calling sipp behind
            assert result.ok
        number, code = created["number"], created["short_code"]

        # 3. The outbox sends the outlet's SMS through the Twilio SDK to the stand-in.
        sms = await _wait(lambda: twilio.to(station.phone), what="the outlet's SMS")
        assert number in sms[0].body and f"签收 {code}" in sms[0].body and "http" not in sms[0].body

        # 4. The outlet replies "签收 <code>" (signed by the stand-in as Twilio does): accepted.
        inbound = settings.public_url("/sms/twilio/inbound")
        r = await asyncio.to_thread(twilio.inbound, inbound, station.phone, f"签收 {code}")
        assert r.status_code == 200, r.text
        assert _order(settings, number).status == Status.ACCEPTED
        # A forged reply changes nothing.
        r = await asyncio.to_thread(
            twilio.inbound, inbound, station.phone, f"办结 {code} 伪造", signature="bad"
        )
        assert r.status_code in (401, 403)
        assert _order(settings, number).status == Status.ACCEPTED

        # 5. "办结 <code> 说明": resolved, and the service archive is written.
        r = await asyncio.to_thread(twilio.inbound, inbound, station.phone, f"办结 {code} 已更换水管")
        assert r.status_code == 200
        order = _order(settings, number)
        assert order.status == Status.RESOLVED and "已更换水管" in order.resolution
        with session_scope(settings) as s:
            archive = s.exec(select(ServiceArchive).where(ServiceArchive.order_id == order.id)).one()
            assert archive.resident_id == resident["id"] and archive.outlet_name == "物业维修服务站"

        # 6. The follow-up (回访) and closing (归档) on the order page.
        for form in ({"action": "回访", "satisfaction": "满意", "note": "居民满意"}, {"action": "归档"}):
            r = await client.post(f"/orders/{order.id}/action", data={"csrf": token, **form})
            assert r.status_code == 303, r.text
        order = _order(settings, number)
        assert order.status == Status.CLOSED and order.open_code is None
        with session_scope(settings) as s:
            actions = [
                h.action
                for h in s.exec(
                    select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id)
                )
            ]
        assert actions == ["受理", "派单", "签收", "办结", "回访", "归档"]

        # 7. The grid record reached the grid platform, signed, ending closed.
        def closed_pushed():
            return [
                p
                for p in receiver.posts
                if p["body"].get("order_number") == number and p["body"].get("status") == Status.CLOSED
            ]

        pushed = await _wait(closed_pushed, what="the grid record")
        assert all(p["ok"] for p in receiver.posts)
        assert pushed[0]["body"]["type"] == "grid_event" and pushed[0]["key"].startswith(f"grid:{number}:")
    finally:
        await ws.close()
        await client.aclose()
