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
        assert b"too large" in answer or "过大".encode() in answer, (path, sent, len(answer), answer[-300:])
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
    # A refused body kept in memory would be 50 MiB or more; the worker threads' malloc arenas add
    # a few MiB under load (8.2 MiB once in CI, about 60 KiB on an idle machine).
    assert grown < 16 * 1024, f"the app grew by {grown} KiB"
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


def test_a_nul_character_is_refused_wherever_text_comes_in(served):
    """In the query, the path, a form or a JSON body (even split across two chunks): 400 with a
    clear message, nothing stored; a file with NUL bytes in it is a file and goes through."""
    seat, csrf = served.login("seat1001")
    headers = {"X-CSRF-Token": csrf}
    r = seat.get("/api/orders", params={"q": "GD\x00"})
    assert r.status_code == 400 and r.json()["code"] == "nul_character"
    assert seat.get("/orders/1%00").status_code == 400

    def split(body: bytes, at: int):
        yield body[:at]
        yield body[at:]

    form = b"summary=%E6%BC%8F%00%E6%B0%B4&order_type=%E6%B1%82%E5%8A%A9"
    r = seat.post(
        "/api/orders",
        content=split(form, form.index(b"%00") + 2),  # "%0" | "0…"
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["code"] == "nul_character"
    body = '{"order_type": "求助", "summary": "漏\\u0000水"}'.encode()
    r = seat.post(
        "/api/orders",
        content=split(body, body.index(b"\\u0000") + 3),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["code"] == "nul_character"
    # The same order without the NUL is taken: the refusal was the character, not the request.
    r = seat.post("/api/orders", json={"order_type": "求助", "summary": "漏水"}, headers=headers)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    # A file is bytes: NUL bytes in a photo are not text.
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    r = seat.post(
        f"/orders/{order_id}/attachments",
        files={"file": ("门.png", photo, "image/png")},
        data={"csrf": csrf},
    )
    assert r.status_code in (303, 200), r.text
