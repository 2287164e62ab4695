"""The administrators' category tree and routing rules on a migrated database: changes are checked,
audited old → new and seen by the very next lookup of another process's table (the stamp); the
preview names the winning rule; the coverage report lists exactly the uncovered pairs."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.directory.models import Community, Grid
from dispatch import categories, routing, rules, service
from dispatch.errors import ConfigError
from dispatch.models import Category, RoutingRule

ADMIN = categories.Editor("admin", "admin", "127.0.0.1")


def test_a_rule_saved_by_one_process_routes_the_next_order_of_another(settings, world):
    # Process B has its table loaded; process A saves a rule (its own session, committed).
    with session_scope(settings) as b:
        assert routing.suggest(b, world.cat_water, world.community).outlet_id == world.supplier
    process_b = dict(routing._tables)  # what B holds in memory
    with session_scope(settings) as a:
        rules.create(
            a,
            ADMIN,
            {"category_id": world.cat_water, "community_id": world.community, "outlet_id": world.outlet_b},
        )
        a.commit()
    # B's table is stale in memory, but the stamp moved: its next lookup reloads (no timer).
    routing._tables.clear()
    routing._tables.update(process_b)
    with session_scope(settings) as b:
        order = service.create_order(
            b,
            world.seat,
            order_type="求助",
            summary="水管漏水",
            category_id=world.cat_water,
            community_id=world.community,
        )
        assert order.suggested_outlet_id == world.outlet_b
    assert routing._tables != process_b


def test_specificity_grid_and_validity_dates(db, world):
    grid = Grid(community_id=world.community, name="一网格")
    db.add(grid)
    db.flush()
    rules.create(db, ADMIN, {"category_id": world.cat_water, "grid_id": grid.id, "outlet_id": world.outlet_a})
    # A grid beats the service area rule of the same category; without the grid the area rule holds.
    hit = routing.suggest(db, world.cat_water, world.community, grid.id)
    assert hit.outlet_id == world.outlet_a and hit.place == "grid"
    assert routing.suggest(db, world.cat_water, world.community).outlet_id == world.supplier
    # A rule valid only in January 2030 wins then, and only then.
    r = rules.create(
        db,
        ADMIN,
        {
            "category_id": world.cat_water,
            "community_id": world.community,
            "outlet_id": world.outlet_b,
            "valid_from": "2030-01-01",
            "valid_until": "2030-01-31",
        },
    )
    assert routing.suggest(db, world.cat_water, world.community, day=date(2030, 1, 15)).rule_id == r.id
    assert (
        routing.suggest(db, world.cat_water, world.community, day=date(2030, 2, 1)).outlet_id
        == world.supplier
    )
    p = rules.preview(db, world.cat_water, world.community, day=date(2030, 1, 15))
    assert p["outlet"]["id"] == world.outlet_b and p["rule"] == {
        "id": r.id,
        "category_level": "category",
        "place": "community",
        "reason": "category + community",
    }


@pytest.mark.parametrize(
    "data, code",
    [
        ({"category_id": 1}, "rule_outlet"),
        ({"outlet_id": 99999}, "rule_unknown"),
        ({"outlet_id": "x"}, "rule_field"),
        ({"outlet_id": 1, "community_id": 1, "area_id": 1}, "rule_place"),
        ({"outlet_id": 1, "priority": "-1"}, "rule_priority"),
        ({"outlet_id": 1, "valid_from": "2030-02-01", "valid_until": "2030-01-01"}, "rule_dates"),
        ({"outlet_id": 1, "valid_from": "not a date"}, "rule_date"),
    ],
)
def test_bad_rules_are_refused_with_a_catalogue_key(db, world, data, code):
    with pytest.raises(ConfigError) as err:
        rules.create(db, ADMIN, data)
    assert err.value.key == f"errors.config.{code}"


def test_coverage_lists_exactly_the_uncovered_pairs(db, world):
    for r in db.exec(select(RoutingRule)):
        db.delete(r)
    db.flush()
    routing.invalidate(db)
    leaf_ids = {c.id for c in categories.leaves(db)}
    assert leaf_ids == {world.cat_water, world.cat_elder}
    # Water everywhere in the area; elder care only in the first community.
    rules.create(
        db, ADMIN, {"category_id": world.cat_water, "area_id": world.area, "outlet_id": world.supplier}
    )
    rules.create(
        db,
        ADMIN,
        {"category_id": world.cat_elder, "community_id": world.community, "outlet_id": world.outlet_a},
    )
    expired = rules.create(
        db,
        ADMIN,
        {
            "category_id": world.cat_elder,
            "community_id": world.other_community,
            "outlet_id": world.outlet_b,
            "valid_until": "2020-01-01",
        },
    )
    shadowed = rules.create(
        db,
        ADMIN,
        {"category_id": world.cat_water, "area_id": world.area, "outlet_id": world.outlet_b, "priority": 200},
    )
    report = rules.coverage(db, date(2026, 12, 5))
    assert [(p["category_id"], p["community_id"]) for p in report["uncovered"]] == [
        (world.cat_elder, world.other_community)
    ]
    assert report["pairs"] == 4
    assert {(d["id"], d["reason"]) for d in report["never_win"]} == {
        (expired.id, "expired"),
        (shadowed.id, "shadowed"),
    }


def test_category_tree_changes_are_checked_and_audited(db, world):
    leaf = categories.create(db, ADMIN, name="管道疏通", parent_id=world.cat_water, national_code="123456")
    assert leaf.code.startswith("C") and leaf.national_code == "123456"
    with pytest.raises(ConfigError) as err:
        categories.update(db, ADMIN, world.cat_root, {"parent_id": leaf.id})
    assert err.value.code == "category_cycle"
    with pytest.raises(ConfigError) as err:
        categories.create(db, ADMIN, name="x", national_code="12345")
    assert err.value.code == "national_code"
    # Moving the leaf under elder care changes which rules cover it, at once.
    assert routing.suggest(db, leaf.id, world.community).outlet_id == world.supplier  # water's area rule
    categories.update(db, ADMIN, leaf.id, {"parent_id": world.cat_elder, "name": "助浴"})
    assert routing.suggest(db, leaf.id, world.community).outlet_id == world.outlet_a  # root's community rule
    # In use (a rule names it): refused; disabled instead.
    with pytest.raises(ConfigError) as err:
        categories.delete(db, ADMIN, world.cat_water)
    assert err.value.code == "category_in_use" and err.value.params["rules"] == 1
    categories.update(db, ADMIN, world.cat_water, {"active": False})
    categories.delete(db, ADMIN, leaf.id)
    db.flush()
    moves = db.exec(select(AuditEntry).where(AuditEntry.action == "category.move")).all()
    assert moves[0].detail["changes"]["parent_id"] == [world.cat_water, world.cat_elder]
    assert moves[0].detail["changes"]["name"] == ["管道疏通", "助浴"]
    assert (
        db.exec(select(AuditEntry).where(AuditEntry.action == "category.delete")).one().detail["old"]["name"]
        == "助浴"
    )


def test_category_and_rule_tables_round_trip(db, world):
    cats = categories.export_rows(db)
    assert cats[0] == {
        "code": "LIFE",
        "name": "生活服务",
        "parent": "",
        "national_code": "",
        "approval_matter": False,
        "active": True,
    }
    # A new child before its parent in the file, and an update by code.
    result = categories.import_rows(
        db,
        ADMIN,
        [
            {
                "code": "LIFE-WATER-PIPE",
                "name": "管道疏通",
                "parent": "LIFE-NEW",
                "national_code": "",
                "active": "是",
            },
            {"code": "LIFE-NEW", "name": "新类", "parent": "LIFE"},
            {"code": "LIFE-WATER", "name": "水电维修服务", "parent": "LIFE", "national_code": "010203"},
        ],
    )
    assert result == {"created": 2, "updated": 1, "rows": 3}
    pipe = db.exec(select(Category).where(Category.code == "LIFE-WATER-PIPE")).one()
    assert db.get(Category, pipe.parent_id).code == "LIFE-NEW"
    with pytest.raises(ConfigError) as err:
        categories.import_rows(db, ADMIN, [{"code": "A", "name": "a", "parent": "NOPE"}])
    assert err.value.params["row"] == 2
    # Rules: exported by names, imported into an empty rule set, routing the same.
    before = {
        (c, m): routing.suggest(db, c, m)
        for c in (world.cat_water, world.cat_elder, None)
        for m in (world.community, world.other_community)
    }
    table = rules.export_rows(db)
    assert table[0]["category"] == "LIFE-WATER" and table[0]["area"] == "十里店片区"
    rules.import_rows(db, ADMIN, table, replace=True)
    after = {k: routing.suggest(db, *k) for k in before}
    assert {k: v.outlet_id if v else None for k, v in before.items()} == {
        k: v.outlet_id if v else None for k, v in after.items()
    }
    with pytest.raises(ConfigError) as err:
        rules.import_rows(
            db, ADMIN, [{"category": "LIFE", "community": "无此社区", "outlet": "桃林社区服务站"}]
        )
    assert err.value.code == "rule_unknown" and err.value.params == {"field": "community", "row": 2}
    assert db.exec(select(Community)).all()
