"""Keeping the grid event and approval records in step with the orders, and pushing them.

A session hook sees every work order written (created or changed, by whoever: a seat, an SMS
reply, the outlet page, Open311, the scheduler) and updates its records in the same transaction;
a changed record bumps its version and queues a signed webhook delivery per configured URL.
The worker posts them with retries; each POST carries ``Idempotency-Key: <kind>:<number>:<v>``
and ``X-Signature: sha256=<HMAC-SHA256(secret, "<timestamp>.<body>")>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from datetime import timedelta

import httpx
from sqlalchemy import event
from sqlmodel import Session, select

from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.outbox import claim_due
from callcenter.records.models import ApprovalRecord, GridEvent, WebhookDelivery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"

APPROVAL_STATUS = {
    "受理": "受理",
    "已派单": "受理",
    "已签收": "办理中",
    "办理中": "办理中",
    "已办结": "办结",
    "已回访": "办结",
    "已归档": "办结",
    "已退单": "退回",
    "已并单": "并件",
}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300) -> bool:
    """What a receiver does (the tests' receiver uses it): signature and freshness."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


# --- the records ---------------------------------------------------------------------------


def _settings() -> Settings:
    from callcenter.config import get_settings

    return get_settings()


def _queue(session: Session, settings: Settings, kind: str, url: str, payload: dict) -> None:
    if not url:
        return
    key = f"{kind}:{payload['order_number']}:{payload['version']}"
    session.add(
        WebhookDelivery(
            idempotency_key=key, kind=kind, order_number=payload["order_number"], url=url, payload=payload
        )
    )


def sync_order(session: Session, order, settings: Settings | None = None) -> None:
    """Create or update the order's grid event (and approval record for approval matters)."""
    from callcenter.directory.models import Community, Grid
    from dispatch.models import Category

    settings = settings or _settings()
    if order.id is None or not order.number:
        return
    grid = session.get(Grid, order.grid_id) if order.grid_id else None
    community = session.get(Community, order.community_id) if order.community_id else None
    values = {
        "grid_id": order.grid_id,
        "grid": grid.name if grid else "",
        "community": community.name if community else "",
        "category": order.category or order.order_type,
        "location": order.address or "",
        "status": order.status,
    }
    ev = session.exec(select(GridEvent).where(GridEvent.order_id == order.id)).first()
    if ev is None or any(getattr(ev, k) != v for k, v in values.items()):
        ev = ev or GridEvent(order_id=order.id, order_number=order.number)
        for k, v in values.items():
            setattr(ev, k, v)
        ev.version += 1
        ev.updated_at = utcnow()
        session.add(ev)
        payload = {"type": "grid_event", "order_number": order.number, "version": ev.version, **values}
        payload["updated_at"] = ev.updated_at.isoformat()
        _queue(session, settings, "grid", settings.grid_webhook_url, payload)

    category = session.get(Category, order.category_id) if getattr(order, "category_id", None) else None
    if category is None or not category.approval_matter:
        return
    applicant = order.caller_name
    if not applicant and order.resident_id:
        from callcenter.residents.models import Resident

        resident = session.get(Resident, order.resident_id)
        applicant = resident.name if resident else ""
    values = {
        "matter": category.name,
        "applicant": applicant or "",
        "status": APPROVAL_STATUS.get(order.status, order.status),
        "outcome": order.resolution or order.return_reason or "",
    }
    rec = session.exec(select(ApprovalRecord).where(ApprovalRecord.order_id == order.id)).first()
    if rec is None or any(getattr(rec, k) != v for k, v in values.items()):
        rec = rec or ApprovalRecord(order_id=order.id, order_number=order.number)
        for k, v in values.items():
            setattr(rec, k, v)
        rec.version += 1
        rec.updated_at = utcnow()
        session.add(rec)
        payload = {"type": "approval_record", "order_number": order.number, "version": rec.version, **values}
        payload["updated_at"] = rec.updated_at.isoformat()
        _queue(session, settings, "approval", settings.approval_webhook_url, payload)


def _after_flush(session: Session, _ctx) -> None:
    from dispatch.models import OrderHistory, WorkOrder

    changed = [o for o in (*session.new, *session.dirty) if isinstance(o, WorkOrder)]
    if changed:
        session.info.setdefault("records_pending", []).extend(changed)
    notices = [h for h in session.new if isinstance(h, OrderHistory)]
    if notices:
        session.info.setdefault("notices_pending", []).extend(notices)


def _after_flush_postexec(session: Session, _ctx) -> None:
    notices = session.info.pop("notices_pending", None)
    if notices:
        _queue_notices(session, notices)
    pending = session.info.pop("records_pending", None)
    if not pending:
        return
    seen: set[int] = set()
    with session.no_autoflush:
        for order in pending:
            if order.id is None or order.id in seen:
                continue
            seen.add(order.id)
            try:
                sync_order(session, order)
            except Exception:  # never let a record break the order change itself
                log.exception("grid/approval record for order %s", order.number)
    # The commit flushes again until the session is clean: the new rows go with the order.


def _queue_notices(session: Session, notices: list) -> None:
    """The outlet's e-mail for each dispatch action, in the same transaction (the e-mail outbox)."""
    from callcenter.mail import NOTICE_ACTIONS, enqueue_order_notice
    from dispatch.models import WorkOrder

    settings = _settings()
    with session.no_autoflush:
        for hist in notices:
            if hist.action not in NOTICE_ACTIONS:
                continue
            order = session.get(WorkOrder, hist.order_id)
            if order is None:
                continue
            try:
                enqueue_order_notice(session, order, hist.action, hist.id, settings)
            except Exception:  # a template or address problem must not undo the dispatch
                log.exception("e-mail notice for order %s", order.number)


_installed = False


def install() -> None:
    """Hook every session (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_flush_postexec", _after_flush_postexec)
    _installed = True


install()


# --- the webhook worker ------------------------------------------------------------------


class WebhookWorker:
    def __init__(self, settings: Settings, batch: int = 16) -> None:
        self.settings = settings
        self.batch = batch
        self.delivered = 0
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10, trust_env=False)
        self._task = asyncio.create_task(self._run(), name="webhook-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook round failed")
            await asyncio.sleep(self.settings.sms_poll_interval_s)

    def _claim_due(self) -> list[WebhookDelivery]:
        # A delivery left "sending" by a dead worker is posted again (the receiver dedupes).
        return claim_due(self.settings, WebhookDelivery, self.batch, self.settings.sms_claim_timeout_s)

    async def run_once(self) -> int:
        due = await asyncio.to_thread(self._claim_due)
        if not due:
            return 0
        results = await asyncio.gather(*(self._post(d) for d in due))
        await asyncio.to_thread(self._record, list(zip(due, results, strict=True)))
        return len(due)

    async def _post(self, d: WebhookDelivery) -> tuple[int | None, str]:
        assert self._client is not None
        body = json.dumps(d.payload, ensure_ascii=False, sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": d.idempotency_key,
            "X-Event-Type": d.kind,
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self.settings.webhook_secret, ts, body),
        }
        try:
            r = await self._client.post(d.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return r.status_code, "" if r.is_success else r.text[:200]

    def _record(self, results: list[tuple[WebhookDelivery, tuple[int | None, str]]]) -> None:
        with session_scope(self.settings) as s:
            for d, (status, error) in results:
                row = s.get(WebhookDelivery, d.id)
                if row is None:
                    continue
                row.response_status = status
                row.claimed_at = None
                if status is not None and 200 <= status < 300:
                    row.status = "delivered"
                    row.delivered_at = utcnow()
                    row.last_error = ""
                    self.delivered += 1
                else:
                    permanent = status is not None and 400 <= status < 500 and status not in (408, 409, 429)
                    row.last_error = (error or f"HTTP {status}")[:500]
                    if permanent or row.attempts >= self.settings.webhook_max_attempts:
                        row.status = "failed"
                    else:
                        delay = min(
                            self.settings.sms_retry_base_s * 2 ** (row.attempts - 1),
                            self.settings.sms_retry_max_s,
                        )
                        row.status = "queued"
                        row.next_attempt_at = utcnow() + timedelta(seconds=delay * random.uniform(0.9, 1.1))
                    log.warning("webhook %s to %s: %s", row.idempotency_key, row.url, row.last_error)
                s.add(row)
            s.commit()
