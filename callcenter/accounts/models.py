"""Accounts and roles. A seat (座席) account carries its SIP endpoint."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from sqlmodel import Field, SQLModel

from callcenter import ids


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    SEAT = "seat"
    OUTLET = "outlet"


class Phone(StrEnum):
    """What rings for a seat: SIP phones on the desk, the phone inside the console page, or both
    (every phone rings; the first to answer takes the call)."""

    DESK = "desk"
    BROWSER = "browser"
    BOTH = "both"


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str = Field(default="", max_length=64)
    password_hash: str = Field(max_length=255)
    role: str = Field(default=Role.SEAT, max_length=16)
    active: bool = True
    must_change_password: bool = False
    # Seats only: the extension and the SIP account their phone registers with. The SIP password
    # itself is never stored: only MD5(<endpoint>:<realm>:<password>), which is what Asterisk's
    # digest check needs (pjsip ``password_digest``), and the realm it was made for.
    extension: str | None = Field(default=None, index=True, unique=True, max_length=16)
    sip_digest: str = Field(default="", max_length=32)
    sip_realm: str = Field(default="", max_length=64)
    # A fixed contact (sip:...@host:port) for desk phones that do not register.
    sip_contact: str = Field(default="", max_length=128)
    # desk | browser | both (Phone): a browser phone's endpoint speaks WebRTC over the console's
    # /sip; with both, the desk phones keep ``seat<ext>`` and the browser gets ``web<ext>``.
    phone: str = Field(default=Phone.DESK, max_length=8)
    outlet_id: int | None = Field(default=None, foreign_key="outlet.id")

    @property
    def endpoint(self) -> str:
        """The seat's SIP account: its desk phones' endpoint and the digest's user name."""
        return f"{ids.DESK_ENDPOINT_PREFIX}{self.extension}"

    @property
    def browser_endpoint(self) -> str | None:
        """The endpoint of the console's browser phone, None without one: a browser-only seat's
        phone is the seat's endpoint itself; with both, the browser has an endpoint of its own
        (WebRTC) next to the desk phones', signed in with the same digest."""
        if self.phone == Phone.BROWSER:
            return self.endpoint
        if self.phone == Phone.BOTH:
            return f"{ids.BROWSER_ENDPOINT_PREFIX}{self.extension}"
        return None

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.endpoint}"

    def set_sip_password(self, password: str, realm: str) -> None:
        """Keep the digest of a new SIP password (the password itself is shown once, elsewhere)."""
        self.sip_realm = realm
        self.sip_digest = sip_digest(self.endpoint, realm, password)


def sip_digest(username: str, realm: str, password: str) -> str:
    """RFC 2617's HA1: what a phone proves it knows when it answers Asterisk's challenge."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


class QueueMembership(SQLModel, table=True):
    """Which seats answer which queue, with their penalty."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    queue_name: str = Field(max_length=32, index=True)
    penalty: int = 0


class LoginFailure(SQLModel, table=True):
    """One failed login (or wrong current password) on one of the throttle's counters
    (``pair:<address>:<user>``, ``addr:<address>``, ``user:<user>``), kept for its window."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, index=True)
    at: float = Field(index=True)  # epoch seconds
