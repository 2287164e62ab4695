"""Routing rules: the most specific (category before parent before any; community before service
area before anywhere) wins, then the lowest priority; the table reloads when told."""

from __future__ import annotations

from dispatch import routing
from dispatch.models import Category, RoutingRule


def test_most_specific_rule_wins(db, world):
    s = db
    assert routing.suggest(s, world.cat_water, world.community).outlet_id == world.supplier  # cat + area
    assert (
        routing.suggest(s, world.cat_elder, world.community).outlet_id == world.outlet_a
    )  # parent + community
    assert routing.suggest(s, world.cat_elder, world.other_community).outlet_id == world.outlet_b
    assert routing.suggest(s, None, None).outlet_id == world.outlet_a  # the catch-all
    hit = routing.suggest(s, world.cat_water, world.community)
    assert hit.reason == "category + service area"
    # A community rule for the category beats the area rule, once the table reloads.
    s.add(RoutingRule(category_id=world.cat_water, community_id=world.community, outlet_id=world.outlet_b))
    s.commit()
    assert routing.suggest(s, world.cat_water, world.community).outlet_id == world.supplier  # cached
    routing.invalidate(s)
    assert routing.suggest(s, world.cat_water, world.community).outlet_id == world.outlet_b
    assert routing.suggest(s, world.cat_water, world.other_community).outlet_id == world.supplier


def test_priority_and_inactive_rules(db, world):
    s = db
    leaf = Category(code="LIFE-WATER-PIPE", name="管道疏通", parent_id=world.cat_water)
    s.add(leaf)
    s.flush()
    s.add(RoutingRule(category_id=leaf.id, outlet_id=world.outlet_b, priority=50))
    s.add(RoutingRule(category_id=leaf.id, outlet_id=world.outlet_a, priority=10))
    s.add(
        RoutingRule(
            category_id=leaf.id, community_id=world.other_community, outlet_id=world.supplier, active=False
        )
    )
    s.commit()
    routing.invalidate(s)
    hit = routing.suggest(s, leaf.id, world.other_community)
    assert hit.outlet_id == world.outlet_a and hit.reason == "category + anywhere"


def test_category_loops_do_not_hang(db, world):
    a = db.get(Category, world.cat_root)
    a.parent_id = world.cat_water  # a cycle made by a bad import
    db.add(a)
    db.commit()
    routing.invalidate(db)
    assert routing.suggest(db, world.cat_water, None) is not None
