"""The whole configuration as one file: export → dry run (the difference) → import into a fresh
database → export gives the same file, and the same routing, deadlines and texts."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from callcenter.config import CHINA_TZ, Settings
from callcenter.database import migrate, session_scope
from dispatch import categories, config_file, deadlines, holidays, message_templates, policies, routing, rules
from dispatch.errors import ConfigError
from dispatch.testing import build_world

ADMIN = categories.Editor("admin", "admin", "127.0.0.1")


def _configure(s, settings, world) -> None:
    pipe = categories.create(s, ADMIN, name="管道疏通", parent_id=world.cat_water, national_code="010203")
    rules.create(
        s,
        ADMIN,
        {
            "category_id": pipe.id,
            "community_id": world.other_community,
            "outlet_id": world.outlet_b,
            "valid_from": "2026-01-01",
            "valid_until": "2031-12-31",
            "priority": 7,
            "note": "夜间",
        },
    )
    holidays.import_rows(s, ADMIN, [{"day": "2031-10-01~2031-10-07", "name": "国庆节"}])
    policies.save(
        s,
        settings,
        ADMIN,
        "投诉",
        "normal",
        {
            "amount": "7",
            "unit": "workdays",
            "accept_minutes": "90",
            "remind_lead_hours": "0",
            "escalate_to": "13900003333",
        },
    )
    message_templates.save(
        s,
        ADMIN,
        "outlet_order",
        {
            "body": "工单{number}请办理，回复 签收 {code}",
            "provider_code": "SMS_1",
            "param_map": {"no": "number"},
        },
    )


def _behaviour(s, world) -> tuple:
    pipe = [c for c in categories.tree(s) if c["code"] != "" and c["name"] == "管道疏通"][0]["id"]
    suggest = {
        (cat, com): (hit.outlet_id if (hit := routing.suggest(s, cat, com, day=date(2027, 1, 5))) else None)
        for cat in (world.cat_water, world.cat_elder, pipe, None)
        for com in (world.community, world.other_community)
    }
    cal = holidays.current(s)
    policy = policies.current(s).get("投诉", "normal")
    due = deadlines.deadline(datetime(2031, 9, 30, 9, tzinfo=CHINA_TZ), "投诉", "normal", cal, None, policy)
    text = message_templates.render(s, "outlet_order", {"number": "GD1", "code": "1234"})
    return suggest, due, text


def test_export_import_into_a_fresh_database_round_trips(settings, world, tmp_path):
    with session_scope(settings) as s:
        _configure(s, settings, world)
        s.commit()
    with session_scope(settings) as s:
        exported = config_file.export(s)
        before = _behaviour(s, world)
    raw = config_file.dumps(exported).encode()

    fresh = Settings(data_dir=tmp_path / "fresh", _env_file=None)
    migrate(fresh)
    with session_scope(fresh) as s:
        world2 = build_world(s)  # the same basic data (names), another database
    assert world2 == world
    with session_scope(fresh) as s:
        dry = config_file.diff(s, config_file.loads(raw))
        assert not dry["unchanged"]
        pipe_code = next(c["code"] for c in exported["categories"] if c["name"] == "管道疏通")
        assert dry["categories"] == {"added": [pipe_code], "removed": [], "changed": []}
        assert dry["holidays"]["added"][0] == "2031-10-01" and len(dry["holidays"]["added"]) == 7
        assert dry["deadlines"]["added"] == ["投诉/normal"] and dry["templates"]["added"] == ["outlet_order"]
        assert len(dry["rules"]["added"]) == 1 and dry["rules"]["removed"] == []
        s.rollback()
    with session_scope(fresh) as s:
        assert config_file.export(s) != exported  # the dry run changed nothing
        config_file.apply(s, fresh, ADMIN, config_file.loads(raw))
        s.commit()
    with session_scope(fresh) as s:
        assert config_file.dumps(config_file.export(s)) == raw.decode()
        assert config_file.diff(s, config_file.loads(raw))["unchanged"]
        assert _behaviour(s, world2) == before


def test_a_broken_file_is_refused_whole(settings, world):
    with session_scope(settings) as s:
        data = config_file.export(s)
        data["rules"].append({"category": "LIFE", "outlet": "无此网点"})
        with pytest.raises(ConfigError) as err:
            config_file.apply(s, settings, ADMIN, data)
        assert err.value.params["part"] == "rules"
        with pytest.raises(ConfigError):
            config_file.loads(b"{not json")
        with pytest.raises(ConfigError):
            config_file.loads(b'{"format": "other"}')
