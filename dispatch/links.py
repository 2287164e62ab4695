"""Signed links to the outlet page. Each link is a row (``OutletLink``) bound to one order and the
outlet it was sent to, with its own expiry (``outlet_link_hours``) and a revocation time; the
token, signed with the session secret (itsdangerous), names the row by a random nonce. A link
works only while the signature, the row and the order all agree. Messaging puts them in e-mails
(China's SMS gateways refuse links); in production only over https."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import update
from sqlmodel import Session, col, select

from callcenter.clock import aware, utcnow
from callcenter.config import Settings
from dispatch.models import OutletLink

log = logging.getLogger(__name__)

SALT = "dispatch.outlet-order"
MAX_TOKEN_LEN = 300


class InsecureLinkBase(ValueError):
    """The console's public address is not https while production is on: no link is built."""


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret, salt=SALT)


def lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=max(0.0, settings.outlet_link_hours))


def issue_token(session: Session, settings: Settings, order_id: int, outlet_id: int) -> str:
    """A new link's token for this order and outlet (its row is added to ``session``)."""
    nonce = secrets.token_urlsafe(12)
    now = utcnow()
    session.add(
        OutletLink(
            nonce=nonce,
            order_id=order_id,
            outlet_id=outlet_id,
            created_at=now,
            expires_at=now + lifetime(settings),
        )
    )
    session.flush()
    return _serializer(settings).dumps({"o": int(order_id), "t": int(outlet_id), "n": nonce})


def read_token(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> tuple[int, int] | None:
    """(order id, outlet id), or None when forged, altered, expired, revoked or naming another
    order or outlet than its row."""
    if not token or len(token) > MAX_TOKEN_LEN:
        return None
    max_age = int(lifetime(settings).total_seconds())
    try:
        data = _serializer(settings).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict):
        return None
    order_id, outlet_id, nonce = data.get("o"), data.get("t"), data.get("n")
    if not isinstance(order_id, int) or not isinstance(outlet_id, int) or not isinstance(nonce, str):
        return None
    row = session.exec(select(OutletLink).where(OutletLink.nonce == nonce[:32])).first()
    if row is None or row.order_id != order_id or row.outlet_id != outlet_id:
        return None
    if row.revoked_at is not None or aware(row.expires_at) <= (now or utcnow()):
        return None
    return order_id, outlet_id


def revoke_links(session: Session, order_id: int, *, keep_outlet: int | None = None) -> int:
    """End the order's live links (those of ``keep_outlet`` stay); return how many (no commit)."""
    stmt = update(OutletLink).where(
        col(OutletLink.order_id) == order_id, col(OutletLink.revoked_at).is_(None)
    )
    if keep_outlet is not None:
        stmt = stmt.where(col(OutletLink.outlet_id) != keep_outlet)
    result = session.execute(stmt.values(revoked_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def outlet_link(
    session: Session, settings: Settings, order_id: int, outlet_id: int, base_url: str = ""
) -> str:
    """A new link to the page for this order and outlet (``base_url``: the console's public URL).
    In production the base must be https: a bearer link is never sent to be opened in clear."""
    base = base_url.rstrip("/")
    if settings.production and not base.lower().startswith("https://"):
        raise InsecureLinkBase(f"outlet links need an https public_base_url in production, not {base!r}")
    return f"{base}/o/{issue_token(session, settings, order_id, outlet_id)}"
