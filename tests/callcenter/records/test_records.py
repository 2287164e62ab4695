"""Grid event and approval records follow the orders and reach a local receiver as signed webhooks."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from callcenter.database import session_scope
from callcenter.directory.models import Community, Grid, Jurisdiction, Outlet
from callcenter.records.models import ApprovalRecord, GridEvent, WebhookDelivery
from callcenter.records.service import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookWorker, verify
from dispatch import service as dispatch
from dispatch import transitions
from dispatch.models import Category
from sms.testing import _ThreadServer


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.fail = 0
        self.received: list[tuple[str, dict]] = []
        self.rejected = 0
        self.seen_keys: set[str] = set()
        self.srv = _ThreadServer(Starlette(routes=[Route("/hook/{kind}", self.hook, methods=["POST"])]))

    async def hook(self, request: Request):
        body = await request.body()
        if not verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
        ):
            self.rejected += 1
            return JSONResponse({"error": "signature"}, status_code=401)
        if self.fail > 0:
            self.fail -= 1
            return JSONResponse({"error": "busy"}, status_code=503)
        key = request.headers["Idempotency-Key"]
        if key not in self.seen_keys:  # a receiver keeps one copy per key
            self.seen_keys.add(key)
            self.received.append((key, json.loads(body)))
        return JSONResponse({"ok": True})


@pytest.fixture
def receiver(settings):
    r = Receiver(settings.webhook_secret)
    r.srv.start()
    settings.grid_webhook_url = f"http://127.0.0.1:{r.srv.port}/hook/grid"
    settings.approval_webhook_url = f"http://127.0.0.1:{r.srv.port}/hook/approval"
    settings.sms_retry_base_s = 0.01
    yield r
    r.srv.stop()


def _world(settings):
    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(settings) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        c = Community(jurisdiction_id=j.id, name="十里店社区")
        s.add(c)
        s.flush()
        g = Grid(community_id=c.id, name="第3网格")
        outlet = Outlet(name="十里店社区服务站", phone="+8613900000001")
        matter = Category(code="APPROVAL-CERT", name="居住证明", approval_matter=True)
        plain = Category(code="LIFE-LIGHT", name="楼道照明")
        s.add_all([g, outlet, matter, plain])
        s.flush()
        ids = []
        for cat in (matter, plain):
            o = dispatch.create_order(
                s,
                seat,
                order_type="求助",
                summary="开具居住证明" if cat is matter else "楼道灯不亮",
                category_id=cat.id,
                caller_name="王秀英",
                community_id=c.id,
                grid_id=g.id,
                address="十里店南街28号",
            )
            s.flush()
            transitions.transition(s, o, "派单", seat, outlet_id=outlet.id)
            ids.append(o.id)
        s.commit()
        return ids, outlet.id


async def test_records_follow_the_order_and_are_pushed_signed_once(settings, receiver):
    (approval_order, plain_order), outlet_id = _world(settings)
    with session_scope(settings) as s:
        ev = s.exec(select(GridEvent).where(GridEvent.order_id == approval_order)).one()
        assert (ev.grid, ev.community, ev.category, ev.location, ev.status) == (
            "第3网格",
            "十里店社区",
            "居住证明",
            "十里店南街28号",
            "已派单",
        )
        [rec] = s.exec(select(ApprovalRecord)).all()  # only the approval matter has one
        assert (rec.order_id, rec.matter, rec.applicant, rec.status) == (
            approval_order,
            "居住证明",
            "王秀英",
            "受理",
        )
        assert len(s.exec(select(GridEvent)).all()) == 2

    receiver.fail = 2  # the receiver is busy at first
    worker = WebhookWorker(settings)
    await worker.start()
    try:
        import asyncio

        for _ in range(600):  # up to 30 s on a busy machine
            await asyncio.sleep(0.05)
            with session_scope(settings) as s:
                if all(d.status == "delivered" for d in s.exec(select(WebhookDelivery))):
                    break
        # The outlet resolves the approval matter: both records change and are pushed again.
        with session_scope(settings) as s:
            from dispatch.models import WorkOrder

            o = s.get(WorkOrder, approval_order)
            actor = dispatch.Actor("outlet", "outlet", outlet_id)
            transitions.transition(s, o, "签收", actor)
            transitions.transition(s, o, "办结", actor, note="证明已开具")
            s.commit()
        for _ in range(600):  # up to 30 s on a busy machine; done as soon as all are delivered
            await asyncio.sleep(0.05)
            with session_scope(settings) as s:
                rows = s.exec(select(WebhookDelivery)).all()
                if all(d.status == "delivered" for d in rows) and len(rows) >= 5:
                    break
    finally:
        await worker.stop()
    assert receiver.rejected == 0
    keys = [k for k, _ in receiver.received]
    assert len(keys) == len(set(keys))
    with session_scope(settings) as s:
        number = s.get(WorkOrder, approval_order).number
    grid_versions = [p for k, p in receiver.received if k.startswith(f"grid:{number}:")]
    approval = [p for k, p in receiver.received if k.startswith(f"approval:{number}:")]
    assert grid_versions[-1]["status"] == "已办结" and grid_versions[-1]["version"] == len(grid_versions)
    assert approval[-1]["status"] == "办结" and approval[-1]["outcome"] == "证明已开具"
    assert approval[-1]["type"] == "approval_record"


async def test_a_forged_signature_is_what_receivers_refuse(settings, receiver):
    import httpx

    body = json.dumps({"order_number": "X"}).encode()
    r = httpx.post(
        settings.grid_webhook_url,
        content=body,
        headers={TIMESTAMP_HEADER: "1", SIGNATURE_HEADER: "sha256=00", "Idempotency-Key": "k"},
        trust_env=False,
    )
    assert r.status_code == 401 and receiver.rejected == 1
