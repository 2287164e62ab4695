"""The Anning District demo data and the bulk residents for the benchmark."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from callcenter.accounts.models import Account, QueueMembership
from callcenter.accounts.service import verify_password
from callcenter.calls.models import CallRecord
from callcenter.config import Settings
from callcenter.database import get_engine, session_scope
from callcenter.directory.models import CallQueue, Community, Grid, Jurisdiction, Outlet, ServiceNumber
from callcenter.ivr.demo import SKILL_QUEUES
from callcenter.residents.models import Resident
from dispatch.models import WorkOrder
from hotline.demo import (
    CHEN_GUILAN_PHONE,
    CHINA_TZ,
    DEMO_PASSWORD,
    HOTLINE_DID,
    HOTLINE_QUEUE,
    LIU_WEI_LANDLINE,
    OUTLETS,
    WANG_XIUYING_PHONE,
    ZHANG_JIANGUO_LANDLINE,
    bulk_phone,
    bulk_residents,
    load_demo,
)
from hotline.models import import_all_models

OFFICES = ["十里店", "培黎", "孔家崖", "西路", "银滩路", "刘家堡", "安宁堡", "沙井驿"]
MOBILE = re.compile(r"^\+861(3\d|5[0-35-9]|8\d)\d{8}$")
LANDLINE = re.compile(r"^\+86931[2-8]\d{6}$")
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_id(number: str) -> bool:
    """GB 11643: weighted sum of the first 17 digits mod 11 picks the check character."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17]


@pytest.fixture
def settings(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path, database_url="")
    import_all_models()
    SQLModel.metadata.create_all(get_engine(settings))
    return settings


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> tuple[Settings, dict]:
    """One full demo load (3000 residents) shared by the read-only tests."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("demo"), database_url="")
    import_all_models()
    SQLModel.metadata.create_all(get_engine(settings))
    with session_scope(settings) as session:
        counts = load_demo(session)
    return settings, counts


def count(session: Session, column, *where) -> int:
    return session.exec(select(func.count(column)).where(*where)).one()


def test_basic_data(demo_db):
    settings, counts = demo_db
    assert counts["created"] is True
    with session_scope(settings) as s:
        offices = s.exec(select(Jurisdiction)).all()
        assert sorted(j.name for j in offices) == sorted(f"{n}街道" for n in OFFICES)
        communities = s.exec(select(Community)).all()
        assert len(communities) == 59 and len({c.name for c in communities}) == 59
        assert sum(c.urban for c in communities) == 26
        assert all(c.demo for c in communities)
        office_of = {j.id: j.name for j in offices}
        rural = [office_of[c.jurisdiction_id] for c in communities if not c.urban]
        assert all(c.name.endswith("村") for c in communities if not c.urban)
        assert sum(o in ("安宁堡街道", "沙井驿街道", "刘家堡街道") for o in rural) > len(rural) / 2
        assert {office_of[c.jurisdiction_id] for c in communities} == set(office_of.values())
        for c in communities:
            names = [g.name for g in s.exec(select(Grid).where(Grid.community_id == c.id)).all()]
            assert 2 <= len(names) <= 6
            assert names == [f"第{n}网格" for n in range(1, len(names) + 1)]

        queue = s.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).one()
        assert (queue.title, queue.strategy, queue.agent_timeout, queue.wrapup, queue.service_level) == (
            "社区服务热线",
            "rrmemory",
            15,
            5,
            15,
        )
        did = s.exec(select(ServiceNumber).where(ServiceNumber.number == HOTLINE_DID)).one()
        assert (did.number, did.queue_name, did.title) == ("96345", "hotline", "安宁区社区服务热线")

        outlets = s.exec(select(Outlet).order_by(Outlet.id)).all()
        assert len(outlets) == len(OUTLETS) == 6
        assert outlets[0].name == "安宁区居家养老服务中心"
        for o in outlets:
            assert (
                o.categories and re.fullmatch(r"\+86139\d{8}", o.phone) and o.email.endswith("@example.org")
            )


def test_accounts(demo_db):
    settings, _ = demo_db
    with session_scope(settings) as s:
        accounts = {a.username: a for a in s.exec(select(Account)).all()}
        assert set(accounts) == {
            "admin",
            "supervisor",
            "seat1001",
            "seat1002",
            "seat1003",
            "seat1004",
            "outlet1",
        }
        assert accounts["admin"].role == "admin" and accounts["supervisor"].role == "supervisor"
        # The supervisor's desk phone rings for listen-in; it answers no queue.
        boss = accounts["supervisor"]
        assert boss.extension == "1900" and boss.sip_contact == "sip:seat1900@127.0.0.1:5090"
        assert not s.exec(select(QueueMembership).where(QueueMembership.account_id == boss.id)).all()
        first_outlet = s.exec(select(Outlet).order_by(Outlet.id)).first()
        assert accounts["outlet1"].role == "outlet" and accounts["outlet1"].outlet_id == first_outlet.id
        sip_digests = set()
        for n in range(1, 5):
            seat = accounts[f"seat100{n}"]
            assert seat.role == "seat" and seat.extension == f"100{n}"
            assert seat.display_name.startswith("座席")
            assert seat.sip_contact == f"sip:seat100{n}@127.0.0.1:{5080 + n}"
            # Only the digest of the SIP password is kept (MD5 hex), with its realm.
            assert re.fullmatch(r"[0-9a-f]{32}", seat.sip_digest) and seat.sip_realm == "callcenter"
            sip_digests.add(seat.sip_digest)
            memberships = s.exec(select(QueueMembership).where(QueueMembership.account_id == seat.id)).all()
            # The hotline, and the skill and 12345 queues of the voice menu demo.
            assert [m.queue_name for m in memberships] == [HOTLINE_QUEUE] + [q for q, _ in SKILL_QUEUES]
        assert len(sip_digests) == 4
        for a in accounts.values():
            assert a.must_change_password and a.active
            assert verify_password(a.password_hash, DEMO_PASSWORD)
            assert not verify_password(a.password_hash, "wrong")


def test_residents(demo_db):
    settings, counts = demo_db
    year = datetime.now(CHINA_TZ).year
    with session_scope(settings) as s:
        residents = s.exec(select(Resident)).all()
        grid_community = {g.id: g.community_id for g in s.exec(select(Grid)).all()}
    assert len(residents) == counts["residents"] == 3000
    assert all(r.demo for r in residents)
    phones = [r.phone for r in residents]
    assert len(set(phones)) == len(phones)
    landlines = [r.phone2 for r in residents if r.phone2]
    assert 0.11 < len(landlines) / len(residents) < 0.19
    assert all(LANDLINE.fullmatch(p) for p in landlines)
    assert not set(phones) & set(landlines)
    assert sum(bool(MOBILE.fullmatch(p)) for p in phones) == len(phones) - 1  # one landline-only resident

    elderly = [r for r in residents if r.elderly]
    assert 0.15 < len(elderly) / len(residents) < 0.21
    alone = [r for r in residents if r.lives_alone]
    assert all(r.elderly for r in alone)
    assert 0.2 < len(alone) / len(elderly) < 0.4
    for r in alone:
        assert re.fullmatch(r"\S{2,4}\((儿子|女儿|侄子|外甥女|邻居)\) 1[358]\d{9}", r.emergency_contact)
    assert 0 < sum(r.vulnerable for r in residents) < 0.05 * len(residents)

    for r in residents:
        assert (year - r.birth_year >= 60) == r.elderly
        assert 18 <= year - r.birth_year <= 100
        assert valid_id(r.id_number), r.id_number
        assert r.id_number.startswith("6201") and r.id_number[6:10] == str(r.birth_year)
        assert 2 <= len(r.name) <= 4
        assert r.community_id is not None and grid_community[r.grid_id] == r.community_id
        assert re.fullmatch(r".+(路|街|大道)\d+号\d单元\d+室|.+村\d社\d+号", r.address)


def test_fixed_residents_and_history(demo_db):
    settings, _ = demo_db
    with session_scope(settings) as s:
        wang = s.exec(select(Resident).where(Resident.phone == WANG_XIUYING_PHONE)).one()
        assert wang.name == "王秀英" and wang.elderly and wang.lives_alone
        assert wang.emergency_contact.startswith("李强(儿子)")
        assert s.get(Community, wang.community_id).name == "培黎社区"
        zhang = s.exec(select(Resident).where(Resident.phone == ZHANG_JIANGUO_LANDLINE)).one()
        assert zhang.phone == "+869318123456" and zhang.name == "张建国"
        assert s.exec(select(Resident).where(Resident.phone2 == LIU_WEI_LANDLINE)).one().name == "刘伟"
        chen = s.exec(select(Resident).where(Resident.phone == CHEN_GUILAN_PHONE)).one()
        assert chen.vulnerable and chen.lives_alone and not s.get(Community, chen.community_id).urban

        # The call history's orders, taken on the calls (dispatch adds orders of its own).
        ours = select(WorkOrder).where(WorkOrder.call_linkedid != "")
        orders = s.exec(ours.order_by(WorkOrder.created_at)).all()
        calls = s.exec(select(CallRecord)).all()
        assert {o.order_type for o in orders} == {"咨询", "求助", "投诉", "举报", "建议", "表扬"}
        assert all(re.fullmatch(r"GD\d{8}-\d{5}", o.number) for o in orders)
        assert len([o for o in orders if o.resident_id == wang.id]) == 3
        linked = {c.linkedid: c for c in calls}
        for o in orders:
            call = linked[o.call_linkedid]
            assert call.resident_id == o.resident_id and call.outcome == "answered"
            # The number carries the local (China) date of the call.
            assert o.number[2:10] == call.started_at.astimezone(CHINA_TZ).strftime("%Y%m%d")
        wang_calls = [c for c in calls if c.resident_id == wang.id]
        assert len(wang_calls) == 4 and {c.outcome for c in wang_calls} == {"answered", "abandoned"}
        assert all(c.caller == WANG_XIUYING_PHONE and c.did == HOTLINE_DID for c in wang_calls)
        assert any(c.source == "12345" and c.order_12345 for c in calls)
        zhang_call = next(c for c in calls if c.resident_id == zhang.id)
        assert zhang_call.caller_raw == "09318123456"


def test_idempotent(demo_db):
    settings, first = demo_db
    with session_scope(settings) as s:
        again = load_demo(s)
        assert again["created"] is False
        assert {k: v for k, v in again.items() if k != "created"} == {
            k: v for k, v in first.items() if k != "created"
        }
        assert count(s, Resident.id) == 3000 and count(s, Community.id) == 59 and count(s, Account.id) == 7


def test_deterministic_and_options(settings, tmp_path):
    other = Settings(data_dir=tmp_path / "other", database_url="")
    SQLModel.metadata.create_all(get_engine(other))
    with session_scope(settings) as a, session_scope(other) as b:
        load_demo(a, residents=200, seat_contact_base_port=None)
        load_demo(b, residents=200, seat_contact_base_port=None)
        rows_a = a.exec(select(Resident.name, Resident.phone, Resident.id_number).order_by(Resident.id)).all()
        rows_b = b.exec(select(Resident.name, Resident.phone, Resident.id_number).order_by(Resident.id)).all()
        assert len(rows_a) == 200 and rows_a == rows_b
        seats = a.exec(select(Account).where(Account.extension.is_not(None), Account.role == "seat")).all()
        assert len(seats) == 4 and all(seat.sip_contact == "" for seat in seats)
        # SIP passwords are made per install, not from the seed.
        digest_b = {x.username: x.sip_digest for x in b.exec(select(Account)).all()}
        assert all(seat.sip_digest != digest_b[seat.username] for seat in seats)


def test_existing_accounts_and_queue_are_kept(settings):
    with session_scope(settings) as s:
        s.add(Account(username="admin", display_name="真管理员", password_hash="x", role="admin"))
        s.add(CallQueue(name=HOTLINE_QUEUE, title="已有队列"))
        s.commit()
        counts = load_demo(s, residents=50)
        assert counts["created"] and counts["accounts"] == 7 and counts["queues"] == 1 + len(SKILL_QUEUES)
        admin = s.exec(select(Account).where(Account.username == "admin")).one()
        assert admin.display_name == "真管理员" and admin.password_hash == "x"
        assert s.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).one().title == "已有队列"


def test_bulk_residents(settings):
    engine = get_engine(settings)
    with session_scope(settings) as s:
        load_demo(s, residents=20)
    bulk_residents(engine, 10000, batch=3000)
    with session_scope(settings) as s:
        assert count(s, Resident.id) == 10020
        bulk = s.exec(select(Resident).where(Resident.id > 20).order_by(Resident.id)).all()
        community_ids = set(s.exec(select(Community.id)).all())
        demo_phones = set(s.exec(select(Resident.phone).where(Resident.id <= 20)).all())
    assert [r.phone for r in bulk] == [bulk_phone(i) for i in range(10000)]
    phones = {r.phone for r in bulk}
    assert len(phones) == 10000 and not phones & demo_phones
    assert all(re.fullmatch(r"\+86199\d{8}", p) for p in phones)
    assert all(r.demo and r.community_id in community_ids and valid_id(r.id_number) for r in bulk)
    assert 0.15 < sum(r.elderly for r in bulk) / len(bulk) < 0.21


def test_bulk_residents_without_communities(settings):
    engine = get_engine(settings)
    bulk_residents(engine, 500)
    bulk_residents(engine, 500, start=500)
    with Session(engine) as s:
        rows = s.exec(select(Resident.phone, Resident.community_id).order_by(Resident.id)).all()
    assert [p for p, _ in rows] == [bulk_phone(i) for i in range(1000)]
    assert all(c is None for _, c in rows)
    assert bulk_phone(999_999) != bulk_phone(0)
    with pytest.raises(ValueError):
        bulk_phone(-1)


def test_load_demo_after_bulk(settings):
    bulk_residents(get_engine(settings), 100)
    with session_scope(settings) as s:
        counts = load_demo(s, residents=30)
    assert counts["created"] and counts["residents"] == 130 and counts["communities"] == 59


def test_the_interactive_demo_gives_one_seat_the_browser_phone(settings):
    from hotline.demo import DEMO_BROWSER_SEAT, use_browser_phone
    from hotline.serve import demo_phone_ports

    with session_scope(settings) as s:
        load_demo(s, residents=20)
        assert use_browser_phone(s)
        seat = s.exec(select(Account).where(Account.extension == DEMO_BROWSER_SEAT)).one()
        assert seat.phone == "browser" and seat.sip_contact == "" and seat.sip_digest
        others = s.exec(select(Account).where(Account.role == "seat", Account.extension != DEMO_BROWSER_SEAT))
        assert {a.phone for a in others} == {"desk"}
        assert not use_browser_phone(s, "9999")
    # The demo starts no desk phone (sipp) for the browser seat.
    assert DEMO_BROWSER_SEAT not in {ext for ext, _ in demo_phone_ports(settings)}
