"""Configuration stamps: one counter per part of the administrators' configuration (``routing``,
``calendar`` …). A change bumps its part's counter in its own transaction; a process that caches
the part compares the counter on each use and reloads when it moved, so the change applies to the
very next lookup on every process, without a timer."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, select

from dispatch.models import ConfigStamp


def current(session: Session, name: str) -> int:
    version = session.exec(select(ConfigStamp.version).where(ConfigStamp.name == name)).first()
    return version if version is not None else 0


def bump(session: Session, name: str) -> int:
    """Move the counter (with the caller's transaction); the new value."""
    done = session.exec(
        update(ConfigStamp).where(ConfigStamp.name == name).values(version=ConfigStamp.version + 1)  # type: ignore[arg-type]
    )
    if not done.rowcount:
        session.add(ConfigStamp(name=name, version=1))
    session.flush()
    return current(session, name)
