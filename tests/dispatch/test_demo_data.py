"""The demo shows dispatch: categories, areas, routing rules, profiles and orders in many states."""

from __future__ import annotations

from sqlmodel import func, select

from callcenter.database import session_scope
from callcenter.residents.models import ElderlyProfile, ServiceArchive
from dispatch import routing
from dispatch.models import Category, OrderHistory, RoutingRule, Status, WorkOrder
from dispatch.scheduler import DeadlineScheduler
from hotline.demo import load_demo


def test_demo_has_dispatch_data(settings):
    with session_scope(settings) as s:
        load_demo(s, residents=50, seat_contact_base_port=None)
        assert s.exec(select(func.count(Category.id))).one() >= 20
        assert s.exec(select(func.count(RoutingRule.id))).one() >= 6
        assert s.exec(select(func.count(ElderlyProfile.id))).one() == 2
        statuses = set(s.exec(select(WorkOrder.status)).all())
        assert {
            Status.RECEIVED,
            Status.DISPATCHED,
            Status.ACCEPTED,
            Status.IN_PROGRESS,
            Status.RESOLVED,
            Status.FOLLOWED_UP,
            Status.CLOSED,
            Status.RETURNED,
        } <= statuses
        assert s.exec(select(func.count(ServiceArchive.id))).one() >= 3
        assert s.exec(select(func.count(OrderHistory.id))).one() > 20
        water = s.exec(select(Category).where(Category.code == "LIFE-REPAIR")).one()
        assert routing.suggest_outlet(s, water.id, None).name == "水电维修网点"
        # Every open order has a unique short code.
        codes = s.exec(select(WorkOrder.open_code).where(WorkOrder.open_code != None)).all()  # noqa: E711
        assert len(codes) == len(set(codes))
    # The overdue demo order is supervised at the scheduler's first pass.
    done = DeadlineScheduler(settings).tick()
    assert "督办" in {a for _, a in done}


def test_new_installation_gets_the_category_tree(settings):
    from dispatch.categories import CATEGORY_TREE, seed_if_empty

    assert seed_if_empty(settings) == len(CATEGORY_TREE)
    assert seed_if_empty(settings) == 0  # once
    with session_scope(settings) as s:
        light = s.exec(select(Category).where(Category.code == "PROP-LIGHT")).one()
        assert s.get(Category, light.parent_id).code == "PROP-FACILITY"
