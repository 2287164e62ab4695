"""Request size limits, counted before anything is read: 50 MiB chunked bodies sent to the app
running in its own uvicorn process are refused with 413, and the process's memory stays put.
A stranger's body on a protected route is refused before a byte of it is read."""

from __future__ import annotations

import select
import socket
import time

import pytest

from web_console.app import SESSION_COOKIE
from web_console.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT

FIFTY_MIB = 50 * 1024 * 1024
CHUNK_SIZE = 65536
# Bodies Starlette's own form limits (1 MiB a field, 1000 fields) would let through to 1 GB: the
# urlencoded body is 64 KiB fields, the multipart one a single file part.
FORM_CHUNK = b"f=" + b"a" * (CHUNK_SIZE - 3) + b"&"
MULTIPART_HEAD = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.xlsx"\r\n\r\n'


def stream_chunked(
    port: int, path: str, headers: dict[str, str], total: int = FIFTY_MIB
) -> tuple[int, int, bytes]:
    """POST ``total`` bytes as a chunked body over a raw socket, stopping as soon as the server
    answers. Returns (status, bytes of body sent, the response's first bytes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    answer = b""
    kind = headers.get("Content-Type", "")
    chunk = FORM_CHUNK if "urlencoded" in kind else b"a" * CHUNK_SIZE
    first = MULTIPART_HEAD if "multipart" in kind else b"[" if "json" in kind else b""
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            data = first + chunk if sent == 0 else chunk
            sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
            sent += len(data)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed: read what it said
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the server closes after a refusal
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        answer += data
    sock.close()
    assert answer.startswith(b"HTTP/1.1 "), f"no answer after {sent} bytes: {answer[:200]!r}"
    return int(answer[9:12]), sent, answer


def _cookie(client) -> str:
    return f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"


def test_fifty_mib_chunked_bodies_are_refused_and_memory_stays_put(served):
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
        stream_chunked(served.port, path, headers, total=8 * 1024 * 1024)
    before = served.rss_kib()
    for path, headers in cases:
        status, sent, answer = stream_chunked(served.port, path, headers)
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
    status, sent, _ = stream_chunked(served.port, "/admin/import", import_headers, total=70 * 1024 * 1024)
    assert status == 413
    assert BODY_LIMITS["/admin/import"] < sent < 70 * 1024 * 1024
    grown = served.rss_kib() - before
    assert grown < 6 * 1024, f"the app grew by {grown} KiB"


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


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/api/orders", 401), ("/orders/1/attachments", 303), ("/admin/import", 303)],
)
def test_a_stranger_is_refused_before_the_body_is_read(served, path, expected):
    status, sent, _ = stream_chunked(
        served.port, path, {"Content-Type": "multipart/form-data; boundary=xyz"}, total=FIFTY_MIB
    )
    assert status == expected
    assert sent < 4 * 1024 * 1024  # answered at once, not after the limit


def test_a_seat_is_refused_on_an_admin_upload_before_the_body_is_read(served):
    seat, csrf = served.login("seat1001")
    status, sent, _ = stream_chunked(
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
