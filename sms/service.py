"""The SMS outbox: ``enqueue_sms`` (in the caller's transaction) and the worker that delivers.

Why an outbox: the notice to an outlet must go out if and only if the order change that caused it
is committed, so the message is a row written in the same transaction; a worker sends it after.

Never twice: a worker claims a row with a conditional UPDATE (queued → sending), so two workers
(or two engines) cannot both take it. If the process dies between the provider's answer and our
commit, the row stays "sending"; after ``sms_claim_timeout_s`` the worker asks the provider
whether it has the message (Twilio: the sender's messages to that number since the message was
written, same body; Aliyun: our id in ``OutId``) and only sends again when it does not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import event, update
from sqlmodel import Session, col, select

from callcenter import phone
from callcenter.clock import aware, utcnow
from callcenter.config import Settings, get_settings
from callcenter.database import session_scope
from callcenter.text import storable
from sms.models import SmsMessage, SmsOptOut, SmsStatus
from sms.providers import Outgoing, ProviderError, SmsProvider, make_provider
from sms.text import prepare

log = logging.getLogger(__name__)


# --- enqueue ---------------------------------------------------------------------------------

_wakers: set = set()
_wakers_lock = threading.Lock()


def _wake_workers(_session=None) -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for wake in wakers:
        wake()


def opted_out(session: Session, number: str) -> bool:
    return session.get(SmsOptOut, number) is not None


def opt_out(session: Session, number: str) -> None:
    """The number replied TD / 退订 (no commit)."""
    if session.get(SmsOptOut, number) is None:
        session.add(SmsOptOut(number=number[:20], at=utcnow()))


def enqueue_optional_sms(
    session: Session,
    to: str,
    body: str,
    *,
    idempotency_key: str,
    order_id: int | None = None,
    settings: Settings | None = None,
    template_code: str = "",
    template_params: dict[str, str] | None = None,
) -> SmsMessage | None:
    """A message the recipient may refuse (progress notices, rating requests): None when the
    number replied TD / 退订; otherwise as ``enqueue_sms``."""
    settings = settings or get_settings()
    number = phone.normalize(to, settings.default_region, settings.default_area_code)
    if number is not None and opted_out(session, number):
        return None
    return enqueue_sms(
        session,
        to,
        body,
        idempotency_key=idempotency_key,
        order_id=order_id,
        settings=settings,
        template_code=template_code,
        template_params=template_params,
    )


def enqueue_sms(
    session: Session,
    to: str,
    body: str,
    *,
    idempotency_key: str,
    order_id: int | None = None,
    settings: Settings | None = None,
    template_code: str = "",
    template_params: dict[str, str] | None = None,
) -> SmsMessage:
    """Add a message to the outbox in ``session`` (not committed: it goes with the caller's change).

    The same ``idempotency_key`` twice gives the first message back. ``to`` is normalised to E.164
    (ValueError when it is not a phone number); the body is fitted to the provider's limits."""
    settings = settings or get_settings()
    number = phone.normalize(to, settings.default_region, settings.default_area_code)
    if number is None:
        raise ValueError(f"not a phone number: {to!r}")
    existing = session.exec(select(SmsMessage).where(SmsMessage.idempotency_key == idempotency_key)).first()
    if existing is not None:
        return existing
    for obj in session.new:  # enqueued earlier in this same transaction
        if isinstance(obj, SmsMessage) and obj.idempotency_key == idempotency_key:
            return obj
    text, parts = prepare(
        body,
        china=settings.sms_china,
        max_segments=settings.sms_max_segments,
        registered_links=(settings.resident_page(),),
    )
    msg = SmsMessage(
        idempotency_key=idempotency_key[:128],
        to=number,
        body=text,
        segments=parts,
        order_id=order_id,
        template_code=template_code[:32],
        template_params=dict(template_params or {}),
    )
    session.add(msg)
    # Deliver right after the commit instead of at the next poll (in this process).
    if not event.contains(session, "after_commit", _wake_workers):
        event.listen(session, "after_commit", _wake_workers, once=True)
    return msg


# --- status callbacks ------------------------------------------------------------------------

_FINAL_CALLBACK = {
    "delivered": SmsStatus.DELIVERED,
    "undelivered": SmsStatus.UNDELIVERED,
    "failed": SmsStatus.FAILED,
}


def apply_status_callback(
    session: Session, message_id: int | None, provider_id: str, status: str, error_code: str = ""
) -> SmsMessage | None:
    """Store a delivery status callback on its message (found by our id, else the provider's)."""
    provider_id, status, error_code = storable(provider_id), storable(status), storable(error_code)
    msg = session.get(SmsMessage, message_id) if message_id else None
    if msg is None and provider_id:
        msg = session.exec(select(SmsMessage).where(SmsMessage.provider_id == provider_id)).first()
    if msg is None or (msg.provider_id and provider_id and msg.provider_id != provider_id):
        return None
    entry = {"status": status[:20], "at": utcnow().isoformat()}
    if error_code:
        entry["error_code"] = error_code[:10]
    msg.callbacks = [*msg.callbacks, entry]
    if provider_id and not msg.provider_id:
        msg.provider_id = provider_id[:64]
    final = _FINAL_CALLBACK.get(status)
    if final is not None:
        msg.status = final
        if final == SmsStatus.DELIVERED:
            msg.delivered_at = utcnow()
        if error_code:
            msg.last_error = f"provider error {error_code}"[:500]
    elif msg.status == SmsStatus.SENDING:
        msg.status = SmsStatus.SENT  # the provider has it: the worker's own commit may still follow
    session.add(msg)
    return msg


# --- the worker -------------------------------------------------------------------------------


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next try: exponential, capped, with ±10 % jitter (no thundering herd)."""
    delay = min(settings.sms_retry_base_s * (2 ** max(attempts - 1, 0)), settings.sms_retry_max_s)
    return delay * random.uniform(0.9, 1.1)


class OutboxWorker:
    """Delivers due outbox messages; run by the engine (or ``callcenter sms-worker``)."""

    def __init__(self, settings: Settings, provider: SmsProvider | None = None, batch: int = 8) -> None:
        self.settings = settings
        self.provider = provider or make_provider(settings)
        self.batch = batch
        # Its own threads: a send waits on the provider, and must not wait for (or hold up) the
        # threads the rest of the engine shares.
        self._pool = self._new_pool()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:64]
        self.sent = 0
        self.failed_tries = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # Thread-safe: enqueue_sms's after-commit hook may run on any thread.
    def wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        with _wakers_lock:
            _wakers.add(self.wake)
        self._task = asyncio.create_task(self._run(), name="sms-outbox")
        log.info("SMS outbox worker started (provider %s)", self.provider.name)

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.batch + 1, thread_name_prefix="sms")

    async def stop(self) -> None:
        with _wakers_lock:
            _wakers.discard(self.wake)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._pool.shutdown(wait=False)  # a send still under way finishes on its thread
        self._pool = self._new_pool()  # started again, it sends again

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SMS outbox round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.sms_poll_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def run_once(self) -> int:
        """One round: recover stale claims, then send what is due, ``batch`` messages at a time
        (a message is taken as soon as one of those is done, not when the slowest of a batch is:
        a provider answering in 150 ms must not cap the outbox at one batch per slowest answer).
        Returns messages handled."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._recover_stale)
        handled = 0
        sending: dict[int, asyncio.Future[bool]] = {}
        # A message another worker claimed first is no reason to stop: it leaves the due list, so
        # every pass either sends or finds fewer due. A failure stops taking more, then is raised.
        failure: BaseException | None = None
        while True:
            if failure is None and len(sending) < self.batch:
                self._wake.clear()  # before the read: a message committed after it wakes the wait below
                due = await loop.run_in_executor(self._pool, self._due_ids, self.batch + len(sending))
                for msg_id in [i for i in due if i not in sending][: self.batch - len(sending)]:
                    sending[msg_id] = loop.run_in_executor(self._pool, self._deliver, msg_id)
            if not sending:
                if failure is not None:
                    raise failure
                return handled
            # A message enqueued while sends are out goes on a free slot at once: waiting for a send
            # to finish would add the provider's answer time (150 ms and more) to its delivery.
            woken: asyncio.Task | None = None
            if failure is None and len(sending) < self.batch:
                woken = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait(
                [*sending.values(), *([woken] if woken else [])], return_when=asyncio.FIRST_COMPLETED
            )
            if woken is not None and not woken.done():
                woken.cancel()
            for msg_id, future in list(sending.items()):
                if future not in done:
                    continue
                del sending[msg_id]
                if future.exception() is not None:
                    failure = future.exception()
                elif future.result():
                    handled += 1

    # --- blocking parts (worker threads) ---

    def _due_ids(self, limit: int) -> list[int]:
        with session_scope(self.settings) as s:
            rows = s.exec(
                select(SmsMessage.id)
                .where(SmsMessage.status == SmsStatus.QUEUED, col(SmsMessage.next_attempt_at) <= utcnow())
                .order_by(col(SmsMessage.next_attempt_at), col(SmsMessage.id))
                .limit(limit)
            ).all()
        return [row_id for row_id in rows if row_id is not None]

    def _claim(self, s: Session, msg_id: int) -> bool:
        result = s.exec(
            update(SmsMessage)
            .where(col(SmsMessage.id) == msg_id, col(SmsMessage.status) == SmsStatus.QUEUED)
            .values(
                status=SmsStatus.SENDING,
                claimed_at=utcnow(),
                claimed_by=self.worker_id,
                attempts=SmsMessage.attempts + 1,
                provider=self.provider.name,
            )
        )
        s.commit()
        return result.rowcount == 1

    @staticmethod
    def _outgoing(msg: SmsMessage) -> Outgoing:
        return Outgoing(
            id=msg.id or 0,
            to=msg.to,
            body=msg.body,
            idempotency_key=msg.idempotency_key,
            created_at=aware(msg.created_at) or utcnow(),
            template_code=msg.template_code,
            template_params=msg.template_params or None,
        )

    def _deliver(self, msg_id: int) -> bool:
        with session_scope(self.settings) as s:
            if not self._claim(s, msg_id):
                return False  # another worker took it
            msg = s.get(SmsMessage, msg_id)
            assert msg is not None
            out = self._outgoing(msg)
            attempts = msg.attempts
        try:
            provider_id = self.provider.send(out)
        except ProviderError as exc:
            if exc.maybe_sent and not exc.permanent:
                self._unanswered(msg_id, attempts, str(exc))
            else:
                self._failed(msg_id, attempts, str(exc), exc.permanent)
            return True
        except Exception as exc:  # a bug or an SDK surprise: retry, never lose the message
            log.exception("SMS %s: provider raised", msg_id)
            self._failed(msg_id, attempts, f"{type(exc).__name__}: {exc}", False)
            return True
        self._mark_sent(msg_id, provider_id)
        return True

    def _mark_sent(self, msg_id: int, provider_id: str) -> None:
        with session_scope(self.settings) as s:
            msg = s.get(SmsMessage, msg_id)
            if msg is None:
                return
            msg.provider_id = (provider_id or "")[:64]
            msg.sent_at = utcnow()
            msg.last_error = ""
            if msg.status == SmsStatus.SENDING:  # a status callback may have come first
                msg.status = SmsStatus.SENT
            s.add(msg)
            s.commit()
        self.sent += 1
        log.info("SMS %s sent (%s %s)", msg_id, self.provider.name, provider_id)

    def _failed(self, msg_id: int, attempts: int, error: str, permanent: bool) -> None:
        self.failed_tries += 1
        give_up = permanent or attempts >= self.settings.sms_max_attempts
        with session_scope(self.settings) as s:
            msg = s.get(SmsMessage, msg_id)
            if msg is None or msg.status != SmsStatus.SENDING:
                return
            msg.last_error = error[:500]
            if give_up:
                msg.status = SmsStatus.FAILED
            else:
                msg.status = SmsStatus.QUEUED
                msg.next_attempt_at = utcnow() + timedelta(seconds=backoff(self.settings, attempts))
            msg.claimed_at = None
            s.add(msg)
            s.commit()
        log.warning(
            "SMS %s attempt %d failed%s: %s", msg_id, attempts, " (giving up)" if give_up else "", error
        )

    def _unanswered(self, msg_id: int, attempts: int, error: str) -> None:
        """The provider may have the message though it never answered: sending again could send
        it twice. The row stays "sending", claimed as if for the claim timeout less the retry's
        backoff, so the stale check asks the provider when the retry is due."""
        self.failed_tries += 1
        wait = backoff(self.settings, attempts)
        with session_scope(self.settings) as s:
            msg = s.get(SmsMessage, msg_id)
            if msg is None or msg.status != SmsStatus.SENDING:
                return
            msg.last_error = error[:500]
            msg.claimed_at = utcnow() - timedelta(seconds=max(0.0, self.settings.sms_claim_timeout_s - wait))
            s.add(msg)
            s.commit()
        log.warning(
            "SMS %s attempt %d unanswered (%s): the provider is asked before any resend",
            msg_id,
            attempts,
            error,
        )

    def _recover_stale(self) -> None:
        """Messages left "sending" by a worker that died: ask the provider before sending again."""
        cutoff = utcnow() - timedelta(seconds=self.settings.sms_claim_timeout_s)
        with session_scope(self.settings) as s:
            stale = s.exec(
                select(SmsMessage).where(
                    SmsMessage.status == SmsStatus.SENDING, col(SmsMessage.claimed_at) < cutoff
                )
            ).all()
        for msg in stale:
            try:
                candidates = self.provider.lookup(self._outgoing(msg))
            except ProviderError as exc:
                log.warning("SMS %s: cannot check with the provider yet: %s", msg.id, exc)
                continue
            with session_scope(self.settings) as s:
                row = s.get(SmsMessage, msg.id)
                if row is None or row.status != SmsStatus.SENDING or row.claimed_by != msg.claimed_by:
                    continue
                # The same text to the same number may be another outbox row's (two reminders on
                # one day): a provider id recorded on another row is not this one.
                if candidates:
                    used = set(
                        s.exec(
                            select(SmsMessage.provider_id).where(
                                col(SmsMessage.provider_id).in_(candidates), SmsMessage.id != row.id
                            )
                        )
                    )
                    candidates = [c for c in candidates if c not in used]
                found = candidates[0] if candidates else None
                if found:
                    row.status = SmsStatus.SENT
                    row.provider_id = found[:64]
                    row.sent_at = row.sent_at or utcnow()
                    log.info("SMS %s: the provider already has it (%s); not sending again", row.id, found)
                else:
                    row.status = SmsStatus.QUEUED
                    row.next_attempt_at = utcnow()
                    log.info("SMS %s: the provider does not have it; sending again", row.id)
                row.claimed_at = None
                s.add(row)
                s.commit()
