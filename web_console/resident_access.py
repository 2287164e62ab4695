"""Who may see a resident's sensitive data (PIPL art. 28: ID number, phones, health notes,
household, who lives alone), and the trail every look leaves.

A seat sees them for the residents linked to its work: the resident of a call popped on its
console (its current call, remembered by the console's socket in ``SeatCalls``), of a call it
answered in the last ``resident_link_hours`` (``CallRecord``), or of an open order it took.
Anyone else's record needs a stated reason (``reveal``), at most ``resident_reveals_per_hour`` an
account, and opens that record for ``resident_reveal_grant_min``. Supervisors and administrators
keep their access. Every look is audited; the audit log is also the counter of the rate limit and
of the burst alert, so several web workers share both without more state.

A burst of lookups of records not linked to the account's work (``resident_burst_lookups`` within
``resident_burst_window_min``) alerts the supervisors: a ``ResidentLookupAlert`` on the wallboard
and an e-mail to ``supervisor_emails`` through the mail outbox.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis
from sqlmodel import Session, col, func, select

from callcenter import ids
from callcenter.accounts.models import Account, Role
from callcenter.audit.models import AuditEntry
from callcenter.audit.service import record as audit
from callcenter.calls.models import CallRecord
from callcenter.config import Settings
from callcenter.errors import UserError
from callcenter.mail import enqueue_mail
from callcenter.messages import ResidentLookupAlert
from dispatch import message_templates
from dispatch.models import Status, WorkOrder

PRIVILEGED = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})

# Audit actions. Linked looks: VIEW (the page) and VIEW_IDENTITY (the full ID number and phones).
# Looks at records not linked to the account's work: DENIED (no reason given: masked), REVEAL (a
# reason stated) and REVEAL_REFUSED (over the hourly limit); these count towards the alert.
VIEW = "resident.view"
VIEW_IDENTITY = "resident.view_identity"
DENIED = "resident.lookup_denied"
REVEAL = "resident.reveal"
REVEAL_REFUSED = "resident.reveal_refused"
UNLINKED = (DENIED, REVEAL, REVEAL_REFUSED)

REASON_MIN, REASON_MAX = 4, 200


class ResidentAccessError(UserError, domain="resident_access"):
    """``forbidden``: a reason is needed; ``rate_limited``: too many this hour; ``invalid``: the
    reason given is too short."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def target(resident_id: int) -> str:
    return f"resident:{resident_id}"


class SeatCalls:
    """The residents popped on each seat's console lately (the seat's current call): the web
    worker's own memory, enough for one worker."""

    blocking = False  # remembering waits on the network (run it off the event loop)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._seen: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def remember(self, ext: str, resident_id: int, ttl_s: float) -> None:
        now = self.clock()
        key = (ext, resident_id)
        with self._lock:
            # Kept in the order remembered (a key remembered again moves to the end), so with one
            # ttl the expired ones are at the front: a day's pops are not all scanned on each pop.
            self._seen.pop(key, None)
            self._seen[key] = now + ttl_s
            expired = list(itertools.takewhile(lambda item: item[1] < now, self._seen.items()))
            for oldest, _ in expired:
                del self._seen[oldest]

    def seen(self, ext: str, resident_id: int) -> bool:
        with self._lock:
            until = self._seen.get((ext, resident_id))
        return until is not None and until >= self.clock()


class RedisSeatCalls(SeatCalls):
    """The same in Redis, so that any web worker knows what another worker's socket forwarded."""

    PREFIX = "cc:seat-call:"
    blocking = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.redis = redis.Redis.from_url(url, socket_timeout=2)

    def remember(self, ext: str, resident_id: int, ttl_s: float) -> None:
        self.redis.set(f"{self.PREFIX}{ext}:{resident_id}", b"1", ex=max(1, math.ceil(ttl_s)))

    def seen(self, ext: str, resident_id: int) -> bool:
        return bool(self.redis.exists(f"{self.PREFIX}{ext}:{resident_id}"))


def popped_resident(payload: dict[str, object]) -> int | None:
    """The resident of a pop forwarded to a console, if any."""
    resident = payload.get("resident")
    rid = resident.get("id") if isinstance(resident, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


def basis(
    session: Session, settings: Settings, seat_calls: SeatCalls, account: Account, resident_id: int
) -> str:
    """Why ``account`` may see the resident's sensitive data: ``role``, ``call``, ``order`` or
    ``reason`` (a reason stated lately); "" when it may not."""
    if account.role in PRIVILEGED:
        return "role"
    now = _utcnow()
    ext = account.extension or ""
    if ids.EXTENSION.fullmatch(ext):
        if seat_calls.seen(ext, resident_id):
            return "call"
        since = now - timedelta(hours=settings.resident_link_hours)
        call = session.exec(
            select(CallRecord.id)
            .where(CallRecord.seat == ext, CallRecord.resident_id == resident_id)
            .where(col(CallRecord.started_at) >= since)
            .limit(1)
        ).first()
        if call is not None:
            return "call"
    order = session.exec(
        select(WorkOrder.id)
        .where(WorkOrder.resident_id == resident_id, WorkOrder.created_by == account.username)
        .where(col(WorkOrder.status).in_(list(Status.OPEN)))
        .limit(1)
    ).first()
    if order is not None:
        return "order"
    granted = session.exec(
        select(AuditEntry.id)
        .where(AuditEntry.actor == account.username, AuditEntry.action == REVEAL)
        .where(AuditEntry.target == target(resident_id))
        .where(col(AuditEntry.at) >= now - timedelta(minutes=settings.resident_reveal_grant_min))
        .limit(1)
    ).first()
    return "reason" if granted is not None else ""


def _count(session: Session, actor: str, actions: tuple[str, ...], minutes: float) -> int:
    since = _utcnow() - timedelta(minutes=minutes)
    return session.exec(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.actor == actor, col(AuditEntry.action).in_(actions))
        .where(col(AuditEntry.at) >= since)
    ).one()


def clean_reason(text: object) -> str:
    """A reason as stored: printable characters, one line, bounded; too short is refused."""
    reason = " ".join("".join(ch for ch in str(text or "") if ch.isprintable()).split())[:REASON_MAX]
    if len(reason) < REASON_MIN:
        raise ResidentAccessError("a reason of at least 4 characters is needed", code="invalid")
    return reason


def allow(session: Session, account: Account, resident_id: int, ip: str, action: str, why: str) -> None:
    """A look at a record the account may see (``why`` is its basis): audited with the basis."""
    audit(session, account.username, action, target=target(resident_id), role=account.role, ip=ip, basis=why)


def refuse(session: Session, account: Account, resident_id: int, ip: str, route: str) -> None:
    """A look at a record not linked to the account's work, with no reason: audited, refused."""
    audit(
        session, account.username, DENIED, target=target(resident_id), role=account.role, ip=ip, route=route
    )


def reveal(
    session: Session, settings: Settings, account: Account, resident_id: int, reason: object, ip: str
) -> str:
    """A stated reason to see a record not linked to the account's work: checked, counted against
    the hourly limit and audited with the reason (the caller commits). Returns the reason."""
    text = clean_reason(reason)
    if _count(session, account.username, (REVEAL,), 60) >= settings.resident_reveals_per_hour:
        audit(
            session,
            account.username,
            REVEAL_REFUSED,
            target=target(resident_id),
            role=account.role,
            ip=ip,
            reason=text,
        )
        raise ResidentAccessError("too many lookups of other residents this hour", code="rate_limited")
    audit(
        session, account.username, REVEAL, target=target(resident_id), role=account.role, ip=ip, reason=text
    )
    return text


# The supervisors' e-mail about a burst of lookups: a template administrators may reword.
LOOKUP_ALERT = message_templates.register(
    message_templates.Spec(
        "resident_lookup_alert",
        "templates.resident_lookup_alert",
        ("actor", "name", "n", "minutes"),
        "账号 {name}（{actor}）在 {minutes} 分钟内查询了 {n} 条与其来电、工单无关的居民档案。"
        "请在审计日志中核查（操作：resident.lookup_denied / resident.reveal）。",
        channel="mail",
        subject="居民信息异常查询：{name}（{actor}）",
    )
)


def burst_alert(session: Session, settings: Settings, account: Account) -> ResidentLookupAlert | None:
    """After an unlinked lookup (flushed in ``session``): at the burst threshold, and at every
    further multiple of it, the supervisors' e-mail is queued in ``session`` and the wallboard's
    message returned (published by the caller once the transaction is committed)."""
    threshold = settings.resident_burst_lookups
    if account.role in PRIVILEGED or threshold <= 0:
        return None
    session.flush()
    n = _count(session, account.username, UNLINKED, settings.resident_burst_window_min)
    if n < threshold or n % threshold:
        return None
    window = settings.resident_burst_window_min
    params = {
        "actor": account.username,
        "name": account.display_name or account.username,
        "n": n,
        "minutes": window,
    }
    now = _utcnow()
    bucket = int(now.timestamp() // max(60.0, window * 60))
    mail = message_templates.render_mail(session, LOOKUP_ALERT.name, params)
    enqueue_mail(
        session,
        settings.supervisor_emails,
        mail.subject,
        mail.text,
        mail.html,
        idempotency_key=f"resident-lookups:{account.username}:{bucket}:{n}",
    )
    return ResidentLookupAlert(
        at=now.timestamp(), actor=account.username, role=account.role, lookups=n, window_min=window
    )
