"""The engine's and each web worker's follower of administrators' changes drops the cached rule
table as soon as the bus says the rules changed."""

from __future__ import annotations

import asyncio

from callcenter.bus import InProcessBus
from callcenter.database import session_scope
from callcenter.messages import ConfigChanged
from dispatch import routing
from dispatch.workers import ConfigFollower


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
