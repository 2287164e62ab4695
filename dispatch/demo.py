"""Dispatch demo data: the category tree, service areas, routing rules, household members and
elderly profiles of the fixed residents, and work orders in several states. Every order is made
through the state machine (``service.create_order`` and ``transitions.transition``, backdated),
so its number, history, deadlines, SMS, records and archive are real."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlmodel import Session, select

from callcenter.accounts.models import Account, Role
from callcenter.clock import aware
from callcenter.database import saved_id
from callcenter.directory.models import Community, Jurisdiction, Outlet, ServiceArea, ServiceAreaCommunity
from callcenter.residents.models import ElderlyProfile, HouseholdMember, Resident
from dispatch import routing, service
from dispatch.actors import Actor
from dispatch.categories import seed_categories
from dispatch.models import Action, Category, RoutingRule, Status, WorkOrder
from dispatch.transitions import transition

# category code → outlet name (from hotline.demo.OUTLETS); "*" is the fallback.
ROUTES: tuple[tuple[str, str], ...] = (
    ("LIFE-REPAIR", "水电维修网点"),
    ("PROP", "物业维修服务站"),
    ("LIFE-CLEAN", "家政服务网点"),
    ("LIFE-GOODS", "粮油配送供应商"),
    ("ELDER", "安宁区居家养老服务中心"),
    ("HEALTH", "社区卫生服务站"),
    ("*", "安宁区居家养老服务中心"),
)


class DemoOrder(NamedTuple):
    """An order and the actions taken on it, in order (派单, 签收, 办理, 办结, 退单, 回访, 审核, 归档,
    直接答复)."""

    category: str  # the category's code
    order_type: str
    summary: str
    steps: tuple[str, ...] = ()
    urgency: str = "normal"


class PastOrder(NamedTuple):
    """An order taken on a call of the demo's call history."""

    order: DemoOrder
    resident: Resident
    taken_at: datetime
    call_linkedid: str


# Dispatch's own orders: (resident's name, hours ago, the order).
ORDERS: tuple[tuple[str, float, DemoOrder], ...] = (
    ("张建国", 2, DemoOrder("LIFE-REPAIR", "求助", "卫生间水龙头关不紧，一直滴水")),
    ("陈桂兰", 5, DemoOrder("ELDER-MEAL", "求助", "独居老人申请每日午餐送餐服务", ("派单",))),
    ("王秀英", 26, DemoOrder("HEALTH-VISIT", "求助", "老人血压偏高，请社区医生上门测量", ("派单", "签收"))),
    ("刘伟", 30, DemoOrder("PROP-LIGHT", "投诉", "3单元楼道灯坏了一周无人修理", ("派单", "签收", "办理"))),
    ("张建国", 50, DemoOrder("LIFE-CLEAN", "求助", "需要家政人员上门打扫卫生", ("派单", "签收", "办结"))),
    (
        "王秀英",
        100,
        DemoOrder(
            "ELDER-ESCORT", "求助", "下周二需要陪同去医院复诊", ("派单", "签收", "办结", "回访", "归档")
        ),
    ),
    (
        "刘伟",
        120,
        DemoOrder("PROP-SANITATION", "投诉", "小区垃圾清运不及时，有异味", ("派单", "签收", "办结", "回访")),
    ),
    ("陈桂兰", 8, DemoOrder("LIFE-GOODS", "求助", "代购米面油送到家", ("派单", "退单"))),
    ("王秀英", 1, DemoOrder("AFFAIRS-POLICY", "咨询", "咨询高龄补贴申领条件", ("直接答复",))),
    ("刘伟", 0.5, DemoOrder("SAFETY-GAS", "举报", "楼下闻到燃气味道", ("派单",), urgency="urgent")),
    # An order past its deadline: the scheduler supervises it (督办) at its next pass.
    ("张建国", 24 * 8, DemoOrder("HEALTH-ASK", "咨询", "咨询慢病随访的时间安排", ("派单",))),
)


class OrderMaker:
    """Makes demo orders through the state machine, each step at its own (past) time."""

    def __init__(self, session: Session, categories: dict[str, Category]) -> None:
        self.session = session
        self.categories = categories
        self.seat = _actor_for(session, "seat1001", Role.SEAT.value)
        self.supervisor = _actor_for(session, "supervisor", Role.SUPERVISOR.value)
        self.made = 0

    def make(
        self,
        spec: DemoOrder,
        resident: Resident | None,
        taken_at: datetime,
        gap: timedelta = timedelta(minutes=20),
        call_linkedid: str = "",
    ) -> WorkOrder:
        session = self.session
        o = service.create_order(
            session,
            self.seat,
            order_type=spec.order_type,
            summary=spec.summary,
            category_id=self.categories[spec.category].id,
            urgency=spec.urgency,
            resident_id=resident.id if resident else None,
            community_id=resident.community_id if resident else None,
            grid_id=resident.grid_id if resident else None,
            address=resident.address if resident else "",
            caller_phone=resident.phone if resident else "",
            caller_name=resident.name if resident else "",
            call_linkedid=call_linkedid,
            now=taken_at,
        )
        self.made += 1
        t = taken_at
        for step in spec.steps:
            t += gap
            self._step(o, step, t)
        return o

    def _step(self, o: WorkOrder, step: str, t: datetime) -> None:
        session, seat = self.session, self.seat
        outlet_id = o.outlet_id or o.suggested_outlet_id
        outlet = session.get(Outlet, outlet_id) if outlet_id else None
        at_outlet = Actor(f"sms:{outlet.phone}", Role.OUTLET.value, outlet.id) if outlet else None
        if step == Action.DISPATCH and outlet is not None:
            transition(session, o, step, seat, now=t, outlet_id=outlet.id)
        elif step == Action.ACCEPT and at_outlet is not None:
            transition(session, o, step, at_outlet, now=t)
        elif step == Action.PROGRESS and at_outlet is not None:
            transition(session, o, step, at_outlet, now=t, note="已电话联系居民，约定上门时间")
        elif step == Action.RESOLVE and at_outlet is not None:
            transition(session, o, step, at_outlet, now=t, note="已上门处理完毕", followup_call=False)
        elif step == Action.RETURN and at_outlet is not None:
            transition(session, o, step, at_outlet, now=t, reason="不属本网点服务范围")
        elif step == Action.FOLLOW_UP:
            transition(session, o, step, seat, now=t, satisfaction="满意", note="居民表示满意")
        elif step == Action.REVIEW:
            transition(session, o, step, self.supervisor, now=t, note="处理得当")
        elif step == Action.CLOSE:
            transition(session, o, step, seat, now=t)
        elif step == Action.ANSWER:
            transition(session, o, step, seat, now=t, note="已在电话中说明办理流程")

    def reminders_until(self, o: WorkOrder, now: datetime) -> None:
        """The scheduler's reminder (催办) and supervision (督办) of an order left at its outlet, at
        the times the scheduler would have given them before ``now``."""
        system = Actor.system()
        remind, due = aware(o.remind_at), aware(o.deadline_at)
        if o.status in Status.AT_OUTLET and remind is not None and remind <= now and o.reminded_at is None:
            if due is None or remind < due:
                transition(self.session, o, Action.REMIND, system, now=remind, note="办结时限将到")
        overdue = Status.AT_OUTLET | {Status.RETURNED}
        if due is not None and due <= now and o.status in overdue and o.supervised_at is None:
            transition(self.session, o, Action.SUPERVISE, system, now=due, note="已超过办结时限")


def load_dispatch_demo(session: Session, now: datetime, past: Sequence[PastOrder] = ()) -> dict[str, int]:
    """The dispatch demo; ``past``: the orders of the call history, made (with the reminders the
    scheduler gave them) before dispatch's own orders."""
    now = now.astimezone(UTC)
    cats = seed_categories(session)
    outlets = {o.name: o for o in session.exec(select(Outlet))}
    communities = list(session.exec(select(Community)))

    # One service area per sub-district office, covering its communities.
    areas = 0
    for office in session.exec(select(Jurisdiction)):
        name = f"{office.name}片区"
        if session.exec(select(ServiceArea).where(ServiceArea.name == name)).first():
            continue
        area = ServiceArea(name=name)
        session.add(area)
        session.flush()
        areas += 1
        for c in communities:
            if c.jurisdiction_id == office.id:
                session.add(ServiceAreaCommunity(area_id=saved_id(area), community_id=saved_id(c)))
    for code, outlet_name in ROUTES:
        outlet = outlets.get(outlet_name)
        if outlet is None:
            continue
        cat_id = None if code == "*" else cats[code].id
        session.add(
            RoutingRule(category_id=cat_id, outlet_id=saved_id(outlet), priority=100 if code != "*" else 999)
        )
    # The property repair station answers repairs in its own community before the district's.
    repair = outlets.get("物业维修服务站")
    if repair is not None and repair.community_id:
        session.add(
            RoutingRule(
                category_id=cats["LIFE-REPAIR"].id,
                community_id=repair.community_id,
                outlet_id=saved_id(repair),
                priority=50,
            )
        )
    session.flush()
    routing.invalidate(session)

    residents = {r.name: r for r in session.exec(select(Resident).where(Resident.demo == True).limit(20))}  # noqa: E712
    wang = residents.get("王秀英")
    chen = residents.get("陈桂兰")
    if wang is not None:
        session.add(
            HouseholdMember(resident_id=saved_id(wang), name="李强", relation="儿子", phone="13919310011")
        )
        session.add(
            ElderlyProfile(
                resident_id=saved_id(wang),
                health_notes="高血压，行动不便，需助行器",
                emergency_phone="13919310011",
                caregiver="社区网格员 赵敏",
                caregiver_phone="13919310099",
            )
        )
    if chen is not None:
        session.add(
            HouseholdMember(resident_id=saved_id(chen), name="马丽", relation="女儿", phone="18919310033")
        )
        session.add(
            ElderlyProfile(
                resident_id=saved_id(chen),
                health_notes="糖尿病，视力差",
                emergency_phone="18919310033",
                caregiver="马丽",
                caregiver_phone="18919310033",
            )
        )

    maker = OrderMaker(session, cats)
    for p in past:
        order = maker.make(
            p.order, p.resident, p.taken_at, gap=timedelta(hours=3), call_linkedid=p.call_linkedid
        )
        maker.reminders_until(order, now)
    for name, hours_ago, spec in ORDERS:
        maker.make(spec, residents.get(name), now - timedelta(hours=hours_ago))
    session.flush()
    return {"categories": len(cats), "areas": areas, "orders": maker.made}


def _actor_for(session: Session, username: str, role: str) -> Actor:
    account = session.exec(select(Account).where(Account.username == username)).first()
    return Actor(account.username if account else username, role)
