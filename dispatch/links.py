"""Signed links to the outlet page: valid for one order and the outlet it was sent to, for a limited
time, signed with the session secret (itsdangerous). Messaging puts them in e-mails (China's SMS
gateways refuse links)."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from callcenter.config import Settings

SALT = "dispatch.outlet-order"
MAX_AGE_S = 7 * 24 * 3600


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret, salt=SALT)


def make_token(settings: Settings, order_id: int, outlet_id: int) -> str:
    return _serializer(settings).dumps({"o": int(order_id), "t": int(outlet_id)})


def read_token(settings: Settings, token: str, max_age: int = MAX_AGE_S) -> tuple[int, int] | None:
    """(order id, outlet id), or None when forged, altered or expired."""
    if not token or len(token) > 300:
        return None
    try:
        data = _serializer(settings).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("o"), int) or not isinstance(data.get("t"), int):
        return None
    return data["o"], data["t"]


def outlet_link(settings: Settings, order_id: int, outlet_id: int, base_url: str = "") -> str:
    """The page's address for this order and outlet (``base_url``: the console's public URL)."""
    return f"{base_url.rstrip('/')}/o/{make_token(settings, order_id, outlet_id)}"
