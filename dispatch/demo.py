"""Dispatch demo data: the category tree, service areas, routing rules, household members and
elderly profiles of the fixed residents, and work orders in several states (made through the
state machine, so their history, deadlines, SMS and archive are real)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from callcenter.accounts.models import Account, Role
from callcenter.directory.models import Community, Jurisdiction, Outlet, ServiceArea, ServiceAreaCommunity
from callcenter.residents.models import ElderlyProfile, HouseholdMember, Resident
from dispatch import routing, service
from dispatch.categories import seed_categories
from dispatch.models import RoutingRule, Status, WorkOrder

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


def load_dispatch_demo(session: Session, now: datetime) -> dict[str, int]:
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
                session.add(ServiceAreaCommunity(area_id=area.id, community_id=c.id))
    for code, outlet_name in ROUTES:
        outlet = outlets.get(outlet_name)
        if outlet is None:
            continue
        cat_id = None if code == "*" else cats[code].id
        session.add(
            RoutingRule(category_id=cat_id, outlet_id=outlet.id, priority=100 if code != "*" else 999)
        )
    # The property repair station answers repairs in its own community before the district's.
    repair = outlets.get("物业维修服务站")
    if repair is not None and repair.community_id:
        session.add(
            RoutingRule(
                category_id=cats["LIFE-REPAIR"].id,
                community_id=repair.community_id,
                outlet_id=repair.id,
                priority=50,
            )
        )
    session.flush()
    routing.invalidate(session)

    # The existing history's orders speak the lifecycle's status names and carry categories.
    legacy = {
        "归档": Status.CLOSED,
        "办结": Status.RESOLVED,
        "办理": Status.IN_PROGRESS,
        "派单": Status.DISPATCHED,
        "签收": Status.ACCEPTED,
        "回访": Status.FOLLOWED_UP,
        "退单": Status.RETURNED,
    }
    by_name = {c.name: c for c in cats.values()}
    for o in session.exec(select(WorkOrder).where(WorkOrder.short_code == "")):
        o.status = legacy.get(o.status, o.status)
        cat = by_name.get(o.category)
        o.category_id = cat.id if cat else None
        o.short_code = service.new_short_code(session)
        o.open_code = None if o.status in Status.FINAL else o.short_code
        session.add(o)
        session.flush()

    residents = {r.name: r for r in session.exec(select(Resident).where(Resident.demo == True).limit(20))}  # noqa: E712
    wang = residents.get("王秀英")
    chen = residents.get("陈桂兰")
    if wang is not None:
        session.add(HouseholdMember(resident_id=wang.id, name="李强", relation="儿子", phone="13919310011"))
        session.add(
            ElderlyProfile(
                resident_id=wang.id,
                health_notes="高血压，行动不便，需助行器",
                emergency_phone="13919310011",
                caregiver="社区网格员 赵敏",
                caregiver_phone="13919310099",
            )
        )
    if chen is not None:
        session.add(HouseholdMember(resident_id=chen.id, name="马丽", relation="女儿", phone="18919310033"))
        session.add(
            ElderlyProfile(
                resident_id=chen.id,
                health_notes="糖尿病，视力差",
                emergency_phone="18919310033",
                caregiver="马丽",
                caregiver_phone="18919310033",
            )
        )

    seat = _actor_for(session, "seat1001", Role.SEAT.value)
    sup = _actor_for(session, "supervisor", Role.SUPERVISOR.value)

    def outlet_actor(outlet: Outlet) -> service.Actor:
        return service.Actor(f"sms:{outlet.phone}", Role.OUTLET.value, outlet.id)

    made = 0

    def order(
        code: str,
        kind: str,
        text: str,
        resident: Resident | None,
        hours_ago: float,
        steps: list[str],
        urgency: str = "normal",
    ) -> WorkOrder | None:
        nonlocal made
        t0 = now - timedelta(hours=hours_ago)
        o = service.create_order(
            session,
            seat,
            order_type=kind,
            summary=text,
            category_id=cats[code].id,
            urgency=urgency,
            resident_id=resident.id if resident else None,
            community_id=resident.community_id if resident else None,
            grid_id=resident.grid_id if resident else None,
            address=resident.address if resident else "",
            caller_phone=resident.phone if resident else "",
            caller_name=resident.name if resident else "",
            now=t0,
        )
        made += 1
        t = t0
        for step in steps:
            t += timedelta(minutes=20)
            outlet = (
                session.get(Outlet, o.outlet_id or o.suggested_outlet_id)
                if (o.outlet_id or o.suggested_outlet_id)
                else None
            )
            if step == "派单" and outlet is not None:
                service.transition(session, o, "派单", seat, now=t, outlet_id=outlet.id)
            elif step in ("签收",) and outlet is not None:
                service.transition(session, o, step, outlet_actor(outlet), now=t)
            elif step == "办理" and outlet is not None:
                service.transition(
                    session, o, step, outlet_actor(outlet), now=t, note="已电话联系居民，约定上门时间"
                )
            elif step == "办结" and outlet is not None:
                service.transition(
                    session, o, step, outlet_actor(outlet), now=t, note="已上门处理完毕", followup_call=False
                )
            elif step == "退单" and outlet is not None:
                service.transition(session, o, step, outlet_actor(outlet), now=t, reason="不属本网点服务范围")
            elif step == "回访":
                service.transition(session, o, step, seat, now=t, satisfaction="满意", note="居民表示满意")
            elif step == "审核":
                service.transition(session, o, step, sup, now=t, note="处理得当")
            elif step == "归档":
                service.transition(session, o, step, seat, now=t)
            elif step == "直接答复":
                service.transition(session, o, step, seat, now=t, note="已在电话中说明办理流程")
        return o

    zhang = residents.get("张建国")
    liu = residents.get("刘伟")
    order("LIFE-REPAIR", "求助", "卫生间水龙头关不紧，一直滴水", zhang, 2, [])
    order("ELDER-MEAL", "求助", "独居老人申请每日午餐送餐服务", chen, 5, ["派单"])
    order("HEALTH-VISIT", "求助", "老人血压偏高，请社区医生上门测量", wang, 26, ["派单", "签收"])
    order("PROP-LIGHT", "投诉", "3单元楼道灯坏了一周无人修理", liu, 30, ["派单", "签收", "办理"])
    order("LIFE-CLEAN", "求助", "需要家政人员上门打扫卫生", zhang, 50, ["派单", "签收", "办结"])
    order(
        "ELDER-ESCORT",
        "求助",
        "下周二需要陪同去医院复诊",
        wang,
        100,
        ["派单", "签收", "办结", "回访", "归档"],
    )
    order("PROP-SANITATION", "投诉", "小区垃圾清运不及时，有异味", liu, 120, ["派单", "签收", "办结", "回访"])
    order("LIFE-GOODS", "求助", "代购米面油送到家", chen, 8, ["派单", "退单"])
    order("AFFAIRS-POLICY", "咨询", "咨询高龄补贴申领条件", wang, 1, ["直接答复"])
    order("SAFETY-GAS", "举报", "楼下闻到燃气味道", liu, 0.5, ["派单"], urgency="urgent")
    # An order past its deadline: the scheduler supervises it (督办) at its next pass.
    order("HEALTH-ASK", "咨询", "咨询慢病随访的时间安排", zhang, 24 * 8, ["派单"])
    session.flush()
    return {"categories": len(cats), "areas": areas, "orders": made}


def _actor_for(session: Session, username: str, role: str) -> service.Actor:
    account = session.exec(select(Account).where(Account.username == username)).first()
    return service.Actor(account.username if account else username, role)
