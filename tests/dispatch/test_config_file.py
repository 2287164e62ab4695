"""The whole configuration as one file: export → dry run (the difference) → import into a fresh
database → export gives the same file, and the same routing, deadlines and texts."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlmodel import select

from callcenter.config import CHINA_TZ, Settings
from callcenter.database import migrate, session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ivr.models import IvrOption, ServiceHours
from dispatch import (
    categories,
    config_file,
    deadlines,
    holidays,
    message_templates,
    operations,
    policies,
    routing,
    rules,
)
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


def _configure_telephony(s, settings) -> None:
    s.add(CallQueue(name="q12345", title="热线", service_level=20))
    s.add(CallQueue(name="q-elder", title="养老", agent_timeout=20))
    s.add(ServiceNumber(number="96301", title="热线", queue_name="q12345"))
    s.add(ServiceHours(number="96301", schedule="daily", open_time="08:00", close_time="20:00"))
    s.add(
        IvrOption(
            number="96301", digit="1", queue_name="q-elder", category="养老服务", prompt_text="养老服务请按1"
        )
    )
    s.flush()
    operations.save(
        s, settings, ADMIN, {"pause_reasons": "用餐\n会议", "supervisor_emails": "a@anning.example"}
    )
    message_templates.save(s, ADMIN, "order_mail", {"subject": "{action}{number}", "body": "请办理{number}"})


def _telephony(s) -> tuple:
    return (
        [
            (q.name, q.title, q.agent_timeout, q.service_level)
            for q in s.exec(select(CallQueue).order_by(CallQueue.name))
        ],
        [(n.number, n.queue_name) for n in s.exec(select(ServiceNumber))],
        [(h.number, h.schedule, h.open_time, h.close_time) for h in s.exec(select(ServiceHours))],
        [(o.number, o.digit, o.queue_name, o.prompt_text) for o in s.exec(select(IvrOption))],
        operations.saved(s),
        message_templates.render_mail(s, "order_mail", {"action": "派单", "number": "GD1"}).subject,
    )


def test_queues_menus_settings_and_mails_travel_in_the_file(settings, world, tmp_path):
    with session_scope(settings) as s:
        _configure_telephony(s, settings)
        s.commit()
    with session_scope(settings) as s:
        raw = config_file.dumps(config_file.export(s)).encode()
        before = _telephony(s)
    fresh = Settings(data_dir=tmp_path / "fresh", _env_file=None)
    migrate(fresh)
    with session_scope(fresh) as s:
        build_world(s)
    with session_scope(fresh) as s:
        dry = config_file.diff(s, config_file.loads(raw))
        assert dry["queues"]["added"] == ["q-elder", "q12345"] and dry["ivr"]["added"] == ["96301/1"]
        assert dry["operations"]["added"] == ["pause_reasons", "supervisor_emails"]
        assert dry["service_hours"]["added"] == ["96301"] and dry["templates"]["added"] == ["order_mail"]
        config_file.apply(s, fresh, ADMIN, config_file.loads(raw))
        s.commit()
    with session_scope(fresh) as s:
        assert config_file.dumps(config_file.export(s)) == raw.decode()
        assert _telephony(s) == before
        assert operations.current(s, fresh).pause_reasons == ["用餐", "会议"]
    # A menu key to a queue the file does not have: the whole file refused, naming its part.
    data = config_file.loads(raw)
    data["ivr"].append({"number": "96301", "digit": "2", "queue_name": "nosuch", "prompt_text": "x"})
    with session_scope(fresh) as s:
        with pytest.raises(ConfigError) as err:
            config_file.apply(s, fresh, ADMIN, data)
        assert err.value.params["part"] == "ivr" and err.value.code == "config_part"


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
