"""Refusals of the dial-out policy: logged, and written to the audit log.

Each refusal names its purpose (``callback``, ``followup``, ``dial``, ``transfer``), the number as
far as it may be shown (the first 40 printable characters) and the reason word of the policy.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.dialout.policy import Decision
from callcenter.errors import UserError
from callcenter.text import no_controls

log = logging.getLogger(__name__)

PURPOSES = ("callback", "followup", "dial", "transfer")


class DialoutRefused(UserError, domain="dialout"):
    """A number the hotline may not call; ``code`` is the policy's reason."""


def shown(number: str) -> str:
    """A refused number as the log and the audit trail show it: bounded, no control characters."""
    return no_controls(str(number)[:40], "?")


def note_refusal(
    session: Session, decision: Decision, purpose: str, number: str, actor: str = "system", **detail: str
) -> None:
    """Log the refusal and add its audit entry to the caller's transaction."""
    log.warning("dial-out refused (%s): %r: %s", purpose, shown(number), decision.reason)
    audit(
        session,
        actor,
        "dialout.refused",
        target=shown(number),
        purpose=purpose,
        reason=decision.reason,
        **{k: str(v)[:64] for k, v in detail.items()},
    )


def record_refusal(
    settings: Settings, decision: Decision, purpose: str, number: str, actor: str = "system", **detail: str
) -> None:
    """The same in a transaction of its own (engine workers, on a thread)."""
    with session_scope(settings) as s:
        note_refusal(s, decision, purpose, number, actor, **detail)
        s.commit()
