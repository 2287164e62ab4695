"""Demo data for the IVR: skill queues, the 12345 queue, a second service number with a
Mandarin menu and office hours (the main hotline 96345 stays a 24-hour line without a menu)."""

from __future__ import annotations

from sqlmodel import Session, select

from callcenter.accounts.models import Account, QueueMembership
from callcenter.database import saved_id
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ivr.models import IvrOption, ServiceHours

MENU_DID = "96346"
MENU_DID_TITLE = "安宁区社区服务热线（语音导航）"
# name, title
SKILL_QUEUES = (
    ("elderly", "老年服务"),
    ("repair", "物业维修"),
    ("complaint", "投诉建议"),
    ("policy", "政策咨询"),
    ("q12345", "12345转办"),
)
# digit, queue, category, label, prompt
MENU = (
    ("1", "elderly", "养老服务", "老年服务", "老年人服务请按1。"),
    ("2", "repair", "水电维修", "物业维修", "物业维修请按2。"),
    ("3", "complaint", "投诉", "投诉建议", "投诉和建议请按3。"),
    ("4", "policy", "政策咨询", "政策咨询", "政策咨询请按4。"),
    ("0", "hotline", "", "人工服务", "人工服务请按0。"),
)


def load_ivr_demo(session: Session, hotline_queue: str = "hotline") -> None:
    """Add the demo menu, hours and queues (existing rows are left alone); the caller commits."""
    for name, title in SKILL_QUEUES:
        if session.exec(select(CallQueue).where(CallQueue.name == name)).first() is None:
            session.add(CallQueue(name=name, title=title, strategy="rrmemory", agent_timeout=15, wrapup=5))
    if session.exec(select(ServiceNumber).where(ServiceNumber.number == MENU_DID)).first() is None:
        session.add(ServiceNumber(number=MENU_DID, title=MENU_DID_TITLE, queue_name=hotline_queue))
    if not session.exec(select(IvrOption).where(IvrOption.number == MENU_DID)).first():
        for digit, queue, category, label, prompt in MENU:
            session.add(
                IvrOption(
                    number=MENU_DID,
                    digit=digit,
                    queue_name=queue if queue != "hotline" else hotline_queue,
                    category=category,
                    label=label,
                    prompt_text=prompt,
                )
            )
    if session.exec(select(ServiceHours).where(ServiceHours.number == MENU_DID)).first() is None:
        session.add(ServiceHours(number=MENU_DID, schedule="workdays", open_time="08:30", close_time="17:30"))
    session.flush()
    # Every demo seat answers every skill (a small centre: one team, several skills).
    seats = session.exec(select(Account).where(Account.role == "seat")).all()
    have = {(m.account_id, m.queue_name) for m in session.exec(select(QueueMembership))}
    for seat in seats:
        for name, _title in SKILL_QUEUES:
            if (seat.id, name) not in have:
                session.add(QueueMembership(account_id=saved_id(seat), queue_name=name, penalty=0))
    session.flush()
