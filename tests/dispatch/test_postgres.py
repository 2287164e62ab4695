"""Dispatch on PostgreSQL: the migration, the lifecycle and numbering by seats at once."""

from __future__ import annotations

import threading

from callcenter.config import Settings, set_settings
from callcenter.database import migrate, session_scope
from dispatch import service, transitions
from dispatch.models import Status
from dispatch.service import Actor
from dispatch.testing import build_world


def _own_database(postgres_url: str) -> str:
    """A database of this test's own on the session's server (others load the demo there)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS cc_dispatch"))
        conn.execute(text("CREATE DATABASE cc_dispatch"))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/cc_dispatch"


def test_dispatch_on_postgres(postgres_url, tmp_path):
    url = _own_database(postgres_url)
    settings = set_settings(Settings(data_dir=tmp_path / "var", database_url=url, _env_file=None))
    migrate(settings)
    with session_scope(settings) as s:
        w = build_world(s)
    made: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def seat(k: int) -> None:
        try:
            for i in range(10):
                with session_scope(settings) as s:
                    o = service.create_order(
                        s,
                        w.seat,
                        order_type="求助",
                        summary=f"{k}-{i}",
                        category_id=w.cat_water,
                        community_id=w.community,
                    )
                    transitions.transition(s, o, "派单", w.seat, outlet_id=o.suggested_outlet_id)
                    s.commit()
                    made.append((o.number, o.short_code))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=seat, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({n for n, _ in made}) == 40 and len({c for _, c in made}) == 40
    with session_scope(settings) as s:
        order = service.find_by_short_code(s, made[0][1])
        assert order.status == Status.DISPATCHED and order.outlet_id == w.supplier
        transitions.transition(s, order, "签收", Actor("supplier", "outlet", w.supplier))
        transitions.transition(s, order, "办结", Actor("supplier", "outlet", w.supplier), note="好了")
        s.commit()
        assert [h.action for h in service.history(s, order.id)] == ["受理", "派单", "签收", "办结"]
