"""Order numbers and short codes, and inserting an order so that both stay unique.

``GD<yyyymmdd>-<5 digits>`` is counted per China day; the short code is what outlets quote in SMS
replies, unique among open orders only (``open_code`` is NULL once an order is final)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from callcenter.config import CHINA_TZ
from dispatch.errors import DispatchError
from dispatch.models import WorkOrder


def next_number(session: Session, now: datetime) -> str:
    """GD<yyyymmdd>-<5 digits>, counted per China day (a range scan on the unique index)."""
    prefix = "GD" + now.astimezone(CHINA_TZ).strftime("%Y%m%d") + "-"
    last = session.exec(
        select(WorkOrder.number)
        .where(WorkOrder.number >= prefix, WorkOrder.number < prefix[:-1] + ".")
        .order_by(col(WorkOrder.number).desc())
        .limit(1)
    ).first()
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:05d}"


def new_short_code(session: Session) -> str:
    """A random code unique among open orders: 4 digits while they last, then 5, then 6."""
    for digits in (4, 5, 6):
        for _ in range(12):
            code = str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))
            if session.exec(select(WorkOrder.id).where(WorkOrder.open_code == code)).first() is None:
                return code
    raise DispatchError("no free short code", "invalid")


def new_query_code() -> str:
    """The six-digit code a resident types with the order number on the resident's page
    (提取码): random, so one order's code says nothing about another's."""
    return f"{secrets.randbelow(10**6):06d}"


def insert_unique(session: Session, order: WorkOrder, now: datetime) -> None:
    """Insert with a fresh number and code; another seat may take the same ones between our read
    and our insert: the unique indexes refuse the second, which takes the next ones (savepoint)."""
    for attempt in range(50):
        if attempt:
            order.number = next_number(session, now)
            order.short_code = order.open_code = new_short_code(session)
        try:
            with session.begin_nested():
                session.add(order)
                session.flush()
            return
        except IntegrityError:
            if order in session:
                session.expunge(order)
    raise DispatchError("could not number the order; try again", "invalid")
