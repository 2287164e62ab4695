"""The webhook outbox: record versions queued in the transaction that changed them, pushed signed.

The order domain (``dispatch.records``) queues a delivery per changed record and configured URL;
the worker posts them with retries; each POST carries ``Idempotency-Key: <kind>:<number>:<v>``
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
from typing import Any

import httpx
from sqlmodel import Session

from callcenter.clock import utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.outbox import claim_due
from callcenter.records.models import WebhookDelivery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"


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


def queue_delivery(session: Session, kind: str, url: str, payload: dict[str, Any]) -> None:
    """One version of a record for ``url`` (nothing when no URL is configured), in the caller's
    transaction. ``payload`` carries ``order_number`` and ``version``: together with ``kind`` they
    make the idempotency key the receiver sees on every retry."""
    if not url:
        return
    key = f"{kind}:{payload['order_number']}:{payload['version']}"
    session.add(
        WebhookDelivery(
            idempotency_key=key, kind=kind, order_number=payload["order_number"], url=url, payload=payload
        )
    )


# --- the webhook worker ------------------------------------------------------------------


MAX_ERROR_BYTES = 800  # of a failed delivery's response, kept as its error


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
        # One record's versions go one after another, oldest first, so the receiver sees them
        # in order; different records go at once.
        records: dict[tuple[str, str], list[WebhookDelivery]] = {}
        for d in sorted(due, key=lambda d: d.id or 0):
            records.setdefault((d.kind, d.order_number), []).append(d)

        async def in_order(rows: list[WebhookDelivery]) -> list[tuple[int | None, str]]:
            return [await self._post(d) for d in rows]

        posted = await asyncio.gather(*(in_order(rows) for rows in records.values()))
        results = [
            (d, r)
            for rows, answers in zip(records.values(), posted, strict=True)
            for d, r in zip(rows, answers, strict=True)
        ]
        await asyncio.to_thread(self._record, results)
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
        if self.settings.production and not d.url.lower().startswith("https://"):
            # Residents' records travel only encrypted in production.
            return None, "refused: production sends webhooks over https only"
        try:
            # Streamed and cut off: a receiver's long answer is not read into memory.
            async with self._client.stream("POST", d.url, content=body, headers=headers) as r:
                head = b""
                if not r.is_success:
                    async for chunk in r.aiter_bytes():
                        head += chunk
                        if len(head) >= MAX_ERROR_BYTES:
                            break
                return r.status_code, head[:MAX_ERROR_BYTES].decode("utf-8", "replace")[:200]
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"

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
