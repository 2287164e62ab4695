"""The engine's and each web worker's follower of administrators' changes drops the cached rule
table as soon as the bus says the rules changed."""

from __future__ import annotations

import asyncio

from callcenter.bus import InProcessBus
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.messages import ConfigChanged
from dispatch import categories, operations, routing
from dispatch.workers import ConfigFollower

ADMIN = categories.Editor("admin", "admin", "127.0.0.1")


async def test_a_config_change_on_the_bus_drops_the_rule_table(settings, world):
    with session_scope(settings) as s:
        routing.suggest(s, world.cat_water, world.community)
    assert routing._tables
    bus = InProcessBus()
    follower = ConfigFollower(bus)
    await follower.start()
    try:
        await bus.publish(ConfigChanged.topic, {"part": "nonsense"})  # ignored
        msg = ConfigChanged(part="routing", version=3)
        await bus.publish(msg.topic, msg.to_json())
        for _ in range(100):
            if follower.seen:
                break
            await asyncio.sleep(0.01)
        assert follower.seen == 1 and not routing._tables
    finally:
        await follower.stop()


async def test_operational_settings_reach_another_worker_through_the_bus(settings, world, tmp_path):
    """A second process's Settings (its own object, same database) takes the administrators'
    values at start and again when the bus says they changed."""
    other = Settings(data_dir=settings.data_dir, database_url=settings.database_url, _env_file=None)
    with session_scope(settings) as s:
        operations.save(s, settings, ADMIN, {"pause_reasons": "用餐\n会议"})
        s.commit()
    bus = InProcessBus()
    follower = ConfigFollower(bus, other)
    await follower.start()
    try:
        assert other.pause_reasons == ["用餐", "会议"]  # applied at start
        with session_scope(settings) as s:
            operations.save(
                s, settings, ADMIN, {"supervisor_phones": "13900001111", "reset": ["pause_reasons"]}
            )
            s.commit()
        assert other.supervisor_phones == []
        msg = ConfigChanged(part="operations", version=2)
        await bus.publish(msg.topic, msg.to_json())
        for _ in range(200):
            if follower.seen:
                break
            await asyncio.sleep(0.01)
        assert other.supervisor_phones == ["+8613900001111"]
        assert other.pause_reasons == ["用餐", "休息", "培训", "整理工单", "会议"]  # the environment's again
    finally:
        await follower.stop()
