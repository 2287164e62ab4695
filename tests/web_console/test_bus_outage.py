"""Redis stopped under a web worker (it keeps the workers' shared session revocations): pages and
the API answer a clear 503 in the person's language, never a 500, and work again once it is back."""

from __future__ import annotations

import logging

from callcenter.bus import InProcessBus
from callcenter.config import Settings
from callcenter.database import migrate
from tests.conftest import RedisServer
from tests.web_console.conftest import TestClient, add_accounts, login, statuses_until_answered
from web_console.app import create_app


def test_pages_and_the_api_answer_503_while_redis_is_down(tmp_path, password_hashes, caplog):
    redis = RedisServer(tmp_path / "redis").start()
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis.url,
        session_secret="test-session-secret-" + "x" * 24,
        production=False,
        _env_file=None,
    )
    try:
        migrate(settings)
        add_accounts(settings, password_hashes)
        with TestClient(create_app(settings, InProcessBus())) as client:
            assert login(client, "super").status_code == 303
            assert client.get("/api/orders").status_code == 200
            redis.stop()
            with caplog.at_level(logging.WARNING, logger="web_console.render"):
                page = client.get("/orders", headers={"Accept": "text/html"})
                api = client.get("/api/orders")
                english = client.get("/api/orders?lang=en")
            assert page.status_code == 503 and page.headers["Retry-After"] == "5"
            assert "消息总线暂时无法访问" in page.text
            assert api.status_code == 503 and api.json()["code"] == "bus_unavailable"
            assert english.status_code == 503 and "message bus" in english.json()["message"]
            said = [r.getMessage() for r in caplog.records if r.name == "web_console.render"]
            assert len(said) == 1 and "bus unavailable" in said[0]  # once, not per request
            redis.start()
            statuses = statuses_until_answered(client, "/api/orders")
            assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
    finally:
        redis.stop()
