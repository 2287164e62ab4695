"""What an administrator does to accounts. Each change writes its audit entry in the same
transaction, and says whether Asterisk's configuration must follow (seats are SIP endpoints)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from callcenter import ids
from callcenter.accounts.models import Account, Phone, QueueMembership, Role
from callcenter.accounts.service import hash_password
from callcenter.audit.service import record
from callcenter.database import saved_id
from callcenter.directory.models import CallQueue
from callcenter.errors import UserError
from callcenter.text import is_digits

USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,32}")


class AccountError(UserError, domain="account"):
    """A request an administrator can correct (the message says how)."""


@dataclass
class Actor:
    username: str
    role: str
    ip: str = ""


def temporary_password() -> str:
    return secrets.token_urlsafe(9)


def sip_password() -> str:
    """A phone's SIP password: typed once into the phone, so long and random (144 bits)."""
    return secrets.token_urlsafe(18)


def _audit(session: Session, actor: Actor, action: str, target: str, **detail) -> None:
    record(session, actor.username, action, target=target, role=actor.role, ip=actor.ip, **detail)


def _queues(session: Session, names: list[str]) -> list[str]:
    known = set(session.exec(select(CallQueue.name)))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AccountError(f"unknown queues: {', '.join(unknown)}")
    return sorted(set(names))


def create_account(
    session: Session,
    actor: Actor,
    username: str,
    display_name: str,
    role: str,
    extension: str = "",
    queues: list[str] | None = None,
    sip_realm: str = "callcenter",
) -> tuple[Account, str, str]:
    """A new account with a temporary password (to be changed at first login); a seat gets its
    phone's SIP password too. Both are returned to be shown once: neither is stored."""
    if not USERNAME.fullmatch(username):
        raise AccountError("username: 2-32 letters, digits, '.', '_' or '-'")
    if role not in {r.value for r in Role}:
        raise AccountError("unknown role")
    display_name = "".join(ch for ch in display_name if ch.isprintable()).strip()[:64]
    if session.exec(select(Account).where(Account.username == username)).first():
        raise AccountError("that username is taken")
    if role == Role.SEAT:
        if not ids.EXTENSION.fullmatch(extension):
            raise AccountError("a seat needs an extension of 3-6 digits")
        if session.exec(select(Account).where(Account.extension == extension)).first():
            raise AccountError("that extension is taken")
    elif extension:
        raise AccountError("only seats have extensions")
    queue_names = _queues(session, queues or []) if role == Role.SEAT else []
    password = temporary_password()
    account = Account(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        must_change_password=True,
        extension=extension or None,
    )
    phone_password = ""
    if role == Role.SEAT:
        phone_password = sip_password()
        account.set_sip_password(phone_password, sip_realm)
    session.add(account)
    session.flush()
    for name in queue_names:
        session.add(QueueMembership(account_id=saved_id(account), queue_name=name))
    _audit(
        session, actor, "account.create", username, account_role=role, extension=extension, queues=queue_names
    )
    session.commit()
    return account, password, phone_password


def set_active(session: Session, actor: Actor, account_id: int, active: bool) -> Account:
    """Enable or disable; a disabled seat's SIP endpoint leaves Asterisk with the next render."""
    account = session.get(Account, account_id)
    if account is None:
        raise AccountError("no such account")
    if account.username == actor.username and not active:
        raise AccountError("you cannot disable your own account")
    account.active = active
    session.add(account)
    _audit(session, actor, "account.enable" if active else "account.disable", account.username)
    session.commit()
    return account


def reset_password(session: Session, actor: Actor, account_id: int) -> tuple[Account, str]:
    account = session.get(Account, account_id)
    if account is None:
        raise AccountError("no such account")
    password = temporary_password()
    account.password_hash = hash_password(password)
    account.must_change_password = True
    session.add(account)
    _audit(session, actor, "account.password_reset", account.username)
    session.commit()
    return account, password


def set_phone(
    session: Session, actor: Actor, account_id: int, phone: str, sip_realm: str = "callcenter"
) -> Account:
    """Desk phones, the console's browser phone, or both: the seat's endpoints change with the next
    render (a browser endpoint speaks WebRTC only, so with both the browser gets an endpoint of
    its own, see ``Account.browser_endpoint``)."""
    account = session.get(Account, account_id)
    if account is None:
        raise AccountError("no such account")
    if phone not in {p.value for p in Phone}:
        raise AccountError("unknown phone: desk, browser or both")
    if not account.extension:
        raise AccountError("only seats with an extension have a phone")
    if not account.sip_digest:
        # The browser phone answers the challenge with the digest; the password is never shown.
        account.set_sip_password(sip_password(), sip_realm)
    account.phone = phone
    session.add(account)
    _audit(session, actor, "account.phone", account.username, phone=phone)
    session.commit()
    return account


def reset_sip_password(
    session: Session, actor: Actor, account_id: int, sip_realm: str, password: str = ""
) -> tuple[Account, str]:
    """A new SIP password for a seat's phones (generated unless given, e.g. by test fixtures);
    only its digest is kept. The phones registered with the old one fail at their next REGISTER."""
    account = session.get(Account, account_id)
    if account is None:
        raise AccountError("no such account")
    if not account.extension or account.role not in (Role.SEAT, Role.SUPERVISOR):
        raise AccountError("only accounts with an extension have a phone")
    password = password or sip_password()
    account.set_sip_password(password, sip_realm)
    session.add(account)
    _audit(session, actor, "account.sip_password_reset", account.username, extension=account.extension)
    session.commit()
    return account, password


# A seat's skill in a queue is its Asterisk penalty: the queue offers a call to the lowest
# penalty among free seats first, so backups answer only when the skilled are busy.
SKILL_LEVELS = {0: "primary", 1: "secondary", 2: "backup"}


def parse_skills(values: list[str]) -> dict[str, int]:
    """Form values ``queue:level`` (an empty value: not in that queue)."""
    skills: dict[str, int] = {}
    for value in values:
        if not value:
            continue
        name, _, level = value.partition(":")
        if not is_digits(level, 3) or int(level) not in SKILL_LEVELS:
            raise AccountError(f"unknown skill level for {name[:32]!r}")
        skills[name] = int(level)
    return skills


def set_queues(session: Session, actor: Actor, account_id: int, skills: dict[str, int]) -> Account:
    """The queues a seat answers, each with its skill level; replaces the previous ones."""
    account = session.get(Account, account_id)
    if account is None or account.role != Role.SEAT:
        raise AccountError("only seats answer queues")
    names = _queues(session, list(skills))
    if any(level not in SKILL_LEVELS for level in skills.values()):
        raise AccountError("unknown skill level")
    for m in session.exec(select(QueueMembership).where(QueueMembership.account_id == account_id)):
        session.delete(m)
    for name in names:
        session.add(QueueMembership(account_id=account_id, queue_name=name, penalty=skills[name]))
    _audit(session, actor, "account.queues", account.username, skills={n: skills[n] for n in names})
    session.commit()
    return account
