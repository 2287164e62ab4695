"""PostgreSQL stopped under the web console (connections lost): pages and the API answer a clear
503 (in the person's language, with Retry-After), never a 500, and work again once it is back."""

from __future__ import annotations

import pytest

from callcenter.bus import InProcessBus
from callcenter.config import Settings
from callcenter.database import dispose_engine, migrate
from tests.conftest import PostgresServer
from tests.web_console.conftest import TestClient, add_accounts, login, statuses_until_answered
from web_console.app import create_app

pytestmark = pytest.mark.postgres


def test_pages_and_the_api_answer_503_while_postgresql_is_down(tmp_path, password_hashes, caplog):
    import logging

    server = PostgresServer()
    settings = Settings(
        data_dir=tmp_path,
        database_url=server.url,
        session_secret="test-session-secret-" + "x" * 24,
        production=False,
        _env_file=None,
    )
    try:
        migrate(settings)
        add_accounts(settings, password_hashes)
        with TestClient(create_app(settings, InProcessBus())) as client:
            assert login(client, "super").status_code == 303
            assert client.get("/orders").status_code == 200
            assert client.get("/api/orders").status_code == 200
            server.stop()
            with caplog.at_level(logging.WARNING, logger="web_console.render"):
                page = client.get("/orders", headers={"Accept": "text/html"})
                api = client.get("/api/orders")
                again = client.get("/api/orders")
            assert page.status_code == 503 and page.headers["Retry-After"] == "5"
            assert "数据库暂时无法访问" in page.text
            assert api.status_code == 503 and api.json()["code"] == "database_unavailable"
            assert again.status_code == 503
            english = client.get("/api/orders?lang=en")
            assert english.status_code == 503 and "cannot be reached" in english.json()["message"]
            said = [r.getMessage() for r in caplog.records if r.name == "web_console.render"]
            assert len(said) == 1 and "database unavailable" in said[0]  # once, not per request
            server.start()
            statuses = statuses_until_answered(client, "/api/orders")
            assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
    finally:
        dispose_engine(settings)
        server.remove()
