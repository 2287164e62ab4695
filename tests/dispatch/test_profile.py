"""The pop's profile carries the household, the elderly profile, the service archive and the
resident's earlier orders."""

from __future__ import annotations

from callcenter.calls.notifier import pop_payload
from callcenter.calls.service import build_profile
from callcenter.calls.state import LiveCall
from callcenter.database import session_scope
from callcenter.residents.models import ElderlyProfile, HouseholdMember
from dispatch import service, transitions
from dispatch.profile import pop_extras


def test_profile_has_household_elderly_archive_and_orders(settings, world):
    with session_scope(settings) as s:
        s.add(HouseholdMember(resident_id=world.resident, name="李建华", relation="儿子"))
        s.add(ElderlyProfile(resident_id=world.resident, health_notes="高血压", caregiver="张护工"))
        order = service.create_order(
            s,
            world.seat,
            order_type="求助",
            summary="代购药品",
            category_id=world.cat_elder,
            resident_id=world.resident,
            community_id=world.community,
        )
        transitions.transition(s, order, "派单", world.seat, outlet_id=world.outlet_a)
        transitions.transition(s, order, "签收", world.outlet)
        transitions.transition(s, order, "办结", world.outlet, note="药品已送到")
        s.commit()
        number = order.number
    profile = build_profile(settings, world.resident, "+8613919310001", pop_extras)
    d = profile["dispatch"]
    assert d["household"][0]["name"] == "李建华"
    assert d["elderly"]["health_notes"] == "高血压" and d["elderly"]["caregiver"] == "张护工"
    assert d["archive"][0]["outlet"] == "十里店社区服务站" and d["archive"][0]["outcome"] == "药品已送到"
    assert d["orders"][0]["number"] == number and d["orders"][0]["status"] == "已办结"
    assert profile["resident"]["community_id"] == world.community
    call = LiveCall(linkedid="1.1", started=0.0)
    call.profile = profile
    assert pop_payload(call, "1001")["dispatch"] == d
