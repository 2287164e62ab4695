"""Request size limits, counted before anything is read: 50 MiB chunked bodies sent to the app
running in its own uvicorn process are refused with 413, and the process's memory stays put.
A stranger's body on a protected route is refused before a byte of it is read."""

from __future__ import annotations

import pytest

from web_console.app import SESSION_COOKIE
from web_console.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT

FIFTY_MIB = 50 * 1024 * 1024


def _cookie(client) -> str:
    return f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"


def test_fifty_mib_chunked_bodies_are_refused_and_memory_stays_put(served, web):
    seat, seat_csrf = served.login("seat1001")
    admin, admin_csrf = served.login("admin")
    cases = [
        ("/login", {"Content-Type": "application/x-www-form-urlencoded"}),
        (
            "/api/orders",
            {"Content-Type": "application/json", "Cookie": _cookie(seat), "X-CSRF-Token": seat_csrf},
        ),
        (
            "/orders/1/attachments",
            {
                "Content-Type": "multipart/form-data; boundary=xyz",
                "Cookie": _cookie(seat),
                "X-CSRF-Token": seat_csrf,
            },
        ),
        (
            "/sms/twilio/inbound",
            {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "c2lnbmF0dXJl"},
        ),
        (f"/sms/aliyun/inbound?token={served.aliyun_token}", {"Content-Type": "application/json"}),
        ("/open311/v2/requests.json", {"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    # Warm up every route once so the first-use imports and caches are not counted as growth.
    for path, headers in cases:
        web.stream_chunked(served.port, path, headers, total=8 * 1024 * 1024)
    before, peak_before = served.rss_kib(), served.rss_kib("VmHWM")
    for path, headers in cases:
        status, sent, answer = web.stream_chunked(served.port, path, headers)
        assert status == 413, (path, answer[:300])
        limit = BODY_LIMITS.get(path.split("?")[0], DEFAULT_BODY_LIMIT)
        assert sent < FIFTY_MIB, path
        assert b"too large" in answer or "过大".encode() in answer, answer[:500]
        assert limit < FIFTY_MIB
    # The import takes its larger limit (a 50 MiB spreadsheet), and not a byte more.
    import_headers = {
        "Content-Type": "multipart/form-data; boundary=xyz",
        "Cookie": _cookie(admin),
        "X-CSRF-Token": admin_csrf,
    }
    status, sent, _ = web.stream_chunked(served.port, "/admin/import", import_headers, total=70 * 1024 * 1024)
    assert status == 413
    assert BODY_LIMITS["/admin/import"] < sent < 70 * 1024 * 1024
    grown = served.rss_kib() - before
    assert grown < 8 * 1024, f"the app grew by {grown} KiB"
    # Not even for a moment: one body read whole would lift the peak by 50 MiB or more.
    peak = served.rss_kib("VmHWM") - peak_before
    assert peak < 16 * 1024, f"the app's peak grew by {peak} KiB"


def test_a_declared_length_over_the_limit_is_refused_before_reading(served):
    seat, csrf = served.login("seat1001")
    r = seat.post(
        "/api/seat/pause",
        content=b"{" + b" " * (DEFAULT_BODY_LIMIT + 10) + b"}",
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept-Language": "en"},
    )
    assert r.status_code == 413
    body = r.json()
    assert body["code"] == "too_large"
    assert "请求内容过大" in body["message"]  # zh-CN first
    r = seat.post(
        "/api/seat/pause?lang=en",
        content=b"{" + b" " * (DEFAULT_BODY_LIMIT + 10) + b"}",
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    assert r.status_code == 413
    assert "too large" in r.json()["message"]
    # A page's form gets the error page, with the same message.
    r = seat.post(
        "/orders/1/attachments",
        content=b"x" * (BODY_LIMITS["/orders/{order_id}/attachments"] + 1),
        headers={
            "Content-Type": "multipart/form-data; boundary=xyz",
            "X-CSRF-Token": csrf,
            "Accept": "text/html",
        },
    )
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
    assert "too large" in r.text  # the session asked for English above


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/api/orders", 401), ("/orders/1/attachments", 303), ("/admin/import", 303)],
)
def test_a_stranger_is_refused_before_the_body_is_read(served, path, expected, web):
    status, sent, _ = web.stream_chunked(
        served.port, path, {"Content-Type": "multipart/form-data; boundary=xyz"}, total=FIFTY_MIB
    )
    assert status == expected
    assert sent < 4 * 1024 * 1024  # answered at once, not after the limit


def test_a_seat_is_refused_on_an_admin_upload_before_the_body_is_read(served, web):
    seat, csrf = served.login("seat1001")
    status, sent, _ = web.stream_chunked(
        served.port,
        "/admin/import",
        {"Content-Type": "multipart/form-data; boundary=xyz", "Cookie": _cookie(seat), "X-CSRF-Token": csrf},
    )
    assert status == 403
    assert sent < 4 * 1024 * 1024


def test_uploads_and_webhooks_have_their_declared_limits():
    assert BODY_LIMITS["/admin/import"] > 50 * 1024 * 1024
    assert BODY_LIMITS["/sms/twilio/inbound"] < DEFAULT_BODY_LIMIT
    assert DEFAULT_BODY_LIMIT == 6 * 1024 * 1024
