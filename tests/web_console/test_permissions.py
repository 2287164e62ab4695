"""The permission walk: every route of the app, for every role, against the access table.

A new route without a rule in ``access.ROUTE_ROLES`` fails here (and is refused by the app).
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.websockets import WebSocketDisconnect

from web_console import access
from web_console.app import create_app
from web_console.protocol import CloseCode

from .conftest import csrf_from

USERS = {"seat": "seat1001", "supervisor": "super", "admin": "admin", "outlet": "outlet", None: None}


def declared(routes):
    """Every declared route, through included routers (newer FastAPI keeps them as wrappers)."""
    for r in routes:
        if isinstance(r, APIRoute | APIWebSocketRoute):
            yield r
        elif getattr(r, "original_router", None) is not None:
            yield from declared(r.original_router.routes)


def http_routes(app):
    for route in declared(app.routes):
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                yield route.path, method


def ws_routes(app):
    return [r.path for r in declared(app.routes) if isinstance(r, APIWebSocketRoute)]


def test_the_walk_sees_the_routes(db, bus):
    app = create_app(db, bus)
    assert {("/console", "GET"), ("/api/seat/pause", "POST"), ("/wallboard", "GET")} <= set(http_routes(app))
    assert {"/ws/console", "/ws/wallboard"} <= set(ws_routes(app))


@pytest.mark.parametrize("role", list(USERS))
def test_every_route_answers_as_the_table_says(db, bus, web, role):
    app = create_app(db, bus)
    with web.TestClient(app) as client:
        token = ""
        if role is not None:
            assert web.login(client, USERS[role]).status_code == 303
            token = csrf_from(client.get("/login", follow_redirects=True).text)  # from home or 403 page
        for path, method in http_routes(app):
            if path in access.PUBLIC_ROUTES or path.startswith("/static"):
                continue
            allowed = access.ROUTE_ROLES.get(path, frozenset())
            kwargs = {"follow_redirects": False}
            if method == "POST":
                # A valid CSRF token and a well-formed body: only the role may decide the answer.
                kwargs |= {"headers": {"X-CSRF-Token": token}, "data": {"csrf": token}}
                if path.startswith("/api/"):
                    kwargs = {
                        "follow_redirects": False,
                        "headers": {"X-CSRF-Token": token},
                        "json": {"paused": False},
                    }
            r = client.request(method, path, **kwargs)
            where = f"{method} {path} as {role}: {r.status_code}"
            if role is None:
                assert r.status_code in (401, 303), where
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/login"), where
                    assert not path.startswith("/api/"), where
            elif role in allowed:
                assert r.status_code not in (401, 403), where
            else:
                assert r.status_code == 403, where
            if path == "/logout" and role in allowed:  # the walk logged itself out: log in again
                assert web.login(client, USERS[role]).status_code == 303
                token = csrf_from(client.get("/login", follow_redirects=True).text)
        for path in ws_routes(app):
            allowed = access.ROUTE_ROLES.get(path, frozenset())
            with client.websocket_connect(path) as ws:
                try:
                    message = ws.receive_json()
                    code = None
                except WebSocketDisconnect as closed:
                    message, code = None, closed.code
            where = f"WS {path} as {role}: {code} {message}"
            if role is None:
                assert code == CloseCode.UNAUTHENTICATED, where
            elif role in allowed:
                # Allowed: the socket opens (a console without an extension says so with 4404).
                assert code in (None, CloseCode.NO_EXTENSION), where
            else:
                assert code == CloseCode.FORBIDDEN, where
