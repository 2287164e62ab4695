"""SMS fixtures: settings on a migrated SQLite database wired to a local Twilio stand-in, a small
world (an outlet with a registered phone and an order dispatched to it) and the app served live."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

import pytest
import uvicorn

from callcenter.bus import InProcessBus
from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from callcenter.directory.models import Community, Jurisdiction, Outlet
from dispatch import service as dispatch
from dispatch import transitions
from sms.testing import FakeTwilio

OUTLET_PHONE = "+8613900000001"
OUTLET_PHONE2 = "+8613900000011"
OTHER_OUTLET_PHONE = "+8613900000002"
STRANGER = "+8613700000099"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def twilio():
    with FakeTwilio() as tw:
        yield tw


@pytest.fixture
def web_port() -> int:
    return _free_port()


@pytest.fixture
def msettings(tmp_path, twilio: FakeTwilio, web_port: int) -> Settings:
    s = set_settings(
        Settings(
            data_dir=tmp_path / "var",
            _env_file=None,
            sms_provider="twilio",
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token,
            twilio_api_base=twilio.base_url,
            sms_from="+15005550006",
            public_base_url=f"http://127.0.0.1:{web_port}",
            sms_retry_base_s=0.05,
            sms_retry_max_s=0.2,
            sms_poll_interval_s=0.05,
            session_secret="s" * 40,
        )
    )
    migrate(s)
    return s


@dataclass
class World:
    outlet: int
    other_outlet: int
    order: int
    other_order: int

    @staticmethod
    def code(order_id: int) -> str:
        from dispatch.models import WorkOrder

        with session_scope() as s:
            return s.get(WorkOrder, order_id).short_code


@pytest.fixture
def world(msettings: Settings) -> World:
    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(msettings) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        c = Community(jurisdiction_id=j.id, name="十里店社区")
        s.add(c)
        s.flush()
        a = Outlet(name="十里店社区服务站", phone=OUTLET_PHONE, phones=OUTLET_PHONE2, community_id=c.id)
        b = Outlet(name="桃林社区服务站", phone=OTHER_OUTLET_PHONE, community_id=c.id)
        s.add_all([a, b])
        s.flush()
        orders = []
        for outlet in (a, b):
            o = dispatch.create_order(
                s, seat, order_type="求助", summary="楼道灯不亮", community_id=c.id, address="十里店南街28号"
            )
            s.flush()
            transitions.transition(s, o, "派单", seat, outlet_id=outlet.id)
            orders.append(o.id)
        s.commit()
        return World(a.id, b.id, orders[0], orders[1])


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        yield


@pytest.fixture
async def live_app(msettings: Settings, web_port: int):
    from web_console.app import create_app

    app = create_app(msettings, InProcessBus())
    config = uvicorn.Config(app, host="127.0.0.1", port=web_port, log_level="warning", lifespan="off")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{web_port}"
    finally:
        server.should_exit = True
        await task
