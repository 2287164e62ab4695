"""A small dispatch world for tests, e2e tests and benchmarks: a jurisdiction, two communities in one
service area, two outlets and a supplier, a category tree, routing rules and one resident."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from callcenter.database import saved_id
from callcenter.directory.models import Community, Jurisdiction, Outlet, ServiceArea, ServiceAreaCommunity
from callcenter.residents.models import Resident
from dispatch import routing
from dispatch.actors import Actor
from dispatch.models import Category, RoutingRule


@dataclass
class World:
    community: int
    other_community: int
    area: int
    outlet_a: int
    outlet_b: int
    supplier: int
    cat_root: int
    cat_water: int
    cat_elder: int
    resident: int

    @property
    def seat(self) -> Actor:
        return Actor("seat1001", "seat")

    @property
    def supervisor(self) -> Actor:
        return Actor("super", "supervisor")

    @property
    def outlet(self) -> Actor:
        return Actor("outlet-a", "outlet", self.outlet_a)

    @property
    def other_outlet(self) -> Actor:
        return Actor("outlet-b", "outlet", self.outlet_b)


def build_world(session: Session) -> World:
    j = Jurisdiction(name="十里店街道")
    session.add(j)
    session.flush()
    c1 = Community(jurisdiction_id=saved_id(j), name="十里店社区")
    c2 = Community(jurisdiction_id=saved_id(j), name="桃林社区")
    session.add_all([c1, c2])
    session.flush()
    area = ServiceArea(name="十里店片区")
    session.add(area)
    session.flush()
    session.add_all(
        [
            ServiceAreaCommunity(area_id=saved_id(area), community_id=saved_id(c1)),
            ServiceAreaCommunity(area_id=saved_id(area), community_id=saved_id(c2)),
        ]
    )
    a = Outlet(name="十里店社区服务站", phone="+8613900000001", community_id=c1.id)
    b = Outlet(name="桃林社区服务站", phone="+8613900000002", community_id=c2.id)
    sup = Outlet(name="安宁水电维修公司", kind="supplier", phone="+8613900000003")
    session.add_all([a, b, sup])
    session.flush()
    root = Category(code="LIFE", name="生活服务")
    session.add(root)
    session.flush()
    water = Category(code="LIFE-WATER", name="水电维修", parent_id=root.id)
    elder = Category(code="LIFE-ELDER", name="居家养老", parent_id=root.id)
    session.add_all([water, elder])
    session.flush()
    session.add_all(
        [
            RoutingRule(category_id=water.id, area_id=area.id, outlet_id=saved_id(sup)),
            RoutingRule(category_id=root.id, community_id=c1.id, outlet_id=saved_id(a)),
            RoutingRule(category_id=root.id, community_id=c2.id, outlet_id=saved_id(b)),
            RoutingRule(category_id=None, outlet_id=saved_id(a), priority=999),
        ]
    )
    r = Resident(name="王秀英", phone="+8613919310001", community_id=c1.id, address="十里店南街1号")
    session.add(r)
    session.commit()
    routing.invalidate()
    rows = (c1, c2, area, a, b, sup, root, water, elder, r)
    return World(*(saved_id(row) for row in rows))
