"""The browser phone's server side: what the SIP relay lets through, the credentials route, and
the relay against a loopback WebSocket standing in for Asterisk's /ws (the real Asterisk is in
tests/e2e/test_webrtc_browser.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest
from sqlmodel import select
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from callcenter.accounts.models import Account, Phone
from callcenter.database import session_scope
from web_console.softphone import MAX_SIP_MESSAGE, check_outgoing, forbidden_response, parse_head

STATIC = Path(__file__).resolve().parents[2] / "web_console" / "static"
ME = "seat1001"


def request(method: str, from_user: str = ME, to_tag: bool = False, compact: bool = False) -> str:
    f, t = ("f", "t") if compact else ("From", "To")
    tag = ";tag=abc" if to_tag else ""
    return (
        f"{method} sip:{ME}@callcenter.invalid SIP/2.0\r\n"
        "Via: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\r\n"
        f"{f}: <sip:{from_user}@callcenter.invalid>;tag=1\r\n"
        f"{t}: <sip:{ME}@callcenter.invalid>{tag}\r\n"
        "Call-ID: c1\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        request("REGISTER"),
        request("INVITE"),
        request("INVITE", compact=True),
        request("BYE", from_user="random", to_tag=True),
        request("ACK", from_user="random", to_tag=True),
        request("INFO", from_user="random", to_tag=True),
        request("CANCEL", from_user="random"),
        "SIP/2.0 200 OK\r\nVia: x\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        "\r\n\r\n",
    ],
)
def test_own_requests_dialogs_responses_and_keepalives_pass(text):
    assert check_outgoing(text, ME) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (request("REGISTER", from_user="seat1002"), "REGISTER not from seat1001"),
        (request("INVITE", from_user="seat1002"), "INVITE not from seat1001"),
        (request("INVITE", from_user="seat1002", compact=True), "INVITE not from seat1001"),
        (request("MESSAGE"), "MESSAGE outside a dialog"),
        (request("SUBSCRIBE"), "SUBSCRIBE outside a dialog"),
        (request("OPTIONS"), "OPTIONS outside a dialog"),
        (request("REFER", to_tag=True), "REFER outside a dialog"),
        ("GET / HTTP/1.1\r\n\r\n", "not a SIP message"),
        (request("REGISTER") + "x" * MAX_SIP_MESSAGE, "message too large"),
    ],
)
def test_foreign_and_unexpected_requests_are_refused(text, why):
    assert check_outgoing(text, ME) == why


def test_a_refusal_answers_403_with_the_request_s_transaction():
    reply = forbidden_response(request("REGISTER", from_user="seat1002"), "REGISTER not from seat1001")
    assert reply is not None and reply.startswith("SIP/2.0 403 Forbidden\r\n")
    head = parse_head(reply)
    assert head is not None and head.method is None
    assert head.headers["call-id"] == "c1" and head.headers["cseq"] == "1 REGISTER"
    assert head.headers["via"].endswith("branch=z9hG4bK1")
    assert forbidden_response(request("ACK", to_tag=True), "x") is None


def _make_browser_seat(settings, password: str = "sip-secret-1001", phone: Phone = Phone.BROWSER) -> None:
    with session_scope(settings) as s:
        seat = s.exec(select(Account).where(Account.username == ME)).one()
        seat.phone = phone
        seat.set_sip_password(password, "callcenter")
        s.add(seat)
        s.commit()


def test_credentials_only_for_a_browser_seat_and_never_cached(client, db, web):
    web.login(client, ME)
    r = client.get("/api/phone")
    assert r.status_code == 200 and r.json() == {"enabled": False}
    _make_browser_seat(db)
    r = client.get("/api/phone")
    assert "no-store" in r.headers["cache-control"]
    body = r.json()
    assert body["enabled"] is True
    assert body["authorization_user"] == ME and body["realm"] == "callcenter"
    # Only the digest Asterisk's challenge needs: the password never reaches the browser.
    assert body["ha1"] == hashlib.md5(f"{ME}:callcenter:sip-secret-1001".encode()).hexdigest()
    assert "sip-secret-1001" not in r.text
    assert body["uri"] == f"sip:{ME}@callcenter.invalid" and body["ws_path"] == "/sip"
    page = client.get("/console")
    assert 'id="phone"' in page.text and body["ha1"] not in page.text


def test_a_seat_with_both_phones_gets_the_browser_endpoint_and_the_seat_s_digest(client, db, web):
    _make_browser_seat(db, phone=Phone.BOTH)
    web.login(client, ME)
    body = client.get("/api/phone").json()
    # The browser speaks for web1001 (its own WebRTC endpoint); the desk phones keep seat1001.
    assert body["enabled"] is True and body["uri"] == "sip:web1001@callcenter.invalid"
    assert body["authorization_user"] == ME
    assert body["ha1"] == hashlib.md5(f"{ME}:callcenter:sip-secret-1001".encode()).hexdigest()
    assert 'id="phone"' in client.get("/console").text


def test_a_desk_seat_s_console_has_no_phone(client, web):
    web.login(client, ME)
    page = client.get("/console")
    assert 'id="phone"' not in page.text and "jssip" not in page.text


def test_the_vendored_jssip_matches_its_integrity_hash_and_the_page_names_it(client, db, web):
    body = (STATIC / "vendor" / "jssip.min.js").read_bytes()
    sri = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert (STATIC / "vendor" / "jssip.min.js.sri").read_text().strip() == sri
    assert "JsSIP" in (STATIC / "vendor" / "jssip.LICENSES.txt").read_text()
    _make_browser_seat(db)
    web.login(client, ME)
    assert f'integrity="{sri}"' in client.get("/console").text


# --- the relay, against a stand-in for Asterisk's /ws ------------------------------------------


@pytest.fixture
async def fake_asterisk(db):
    """A loopback WebSocket speaking subprotocol "sip" that records what it gets and answers
    each request with a canned 200 OK."""
    received: list[str] = []

    async def handler(ws):
        async for message in ws:
            received.append(message)
            await ws.send("SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")

    async with serve(handler, "127.0.0.1", 0, subprotocols=["sip"]) as server:
        db.asterisk_http_port = server.sockets[0].getsockname()[1]
        yield received


def sip_connect(live, cookie: str | None = None, origin: str | None = "same"):
    """A WebSocket to /sip offering the "sip" subprotocol, as JsSIP opens it."""
    return ws_connect(
        live.ws_url.replace("/ws/console", "/sip"),
        additional_headers={"Cookie": cookie} if cookie else {},
        origin=live.base_url if origin == "same" else origin,
        subprotocols=["sip"],
        proxy=None,
        open_timeout=5,
        close_timeout=2,
    )


async def _closed_with(ws) -> int:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None
    return info.value.rcvd.code


async def test_relay_carries_the_seat_s_own_sip_and_refuses_the_rest(live, fake_asterisk):
    _make_browser_seat(live.settings)
    http = await live.login(ME)
    async with sip_connect(live, live.cookie_header(http)) as ws:
        assert ws.subprotocol == "sip"
        await ws.send(request("REGISTER"))
        assert (await asyncio.wait_for(ws.recv(), 5)).startswith("SIP/2.0 200 OK")
        await ws.send(request("REGISTER", from_user="seat1002"))
        assert (await asyncio.wait_for(ws.recv(), 5)).startswith("SIP/2.0 403 Forbidden")
    await http.aclose()
    assert fake_asterisk == [request("REGISTER")]


async def test_relay_of_a_seat_with_both_phones_speaks_for_the_browser_endpoint_only(live, fake_asterisk):
    _make_browser_seat(live.settings, phone=Phone.BOTH)
    http = await live.login(ME)
    async with sip_connect(live, live.cookie_header(http)) as ws:
        await ws.send(request("REGISTER", from_user="web1001"))
        assert (await asyncio.wait_for(ws.recv(), 5)).startswith("SIP/2.0 200 OK")
        # Not as the seat's desk phones, nor as another seat's browser.
        for other in (ME, "web1002"):
            await ws.send(request("REGISTER", from_user=other))
            assert (await asyncio.wait_for(ws.recv(), 5)).startswith("SIP/2.0 403 Forbidden")
    await http.aclose()
    assert fake_asterisk == [request("REGISTER", from_user="web1001")]


async def test_relay_refuses_no_session_a_desk_seat_and_a_foreign_origin(live, fake_asterisk):
    async with sip_connect(live) as ws:
        assert await _closed_with(ws) == 4401
    http = await live.login(ME)
    async with sip_connect(live, live.cookie_header(http)) as ws:
        assert await _closed_with(ws) == 4404  # a desk phone: nothing to relay
    _make_browser_seat(live.settings)
    async with sip_connect(live, live.cookie_header(http), origin="http://evil.example") as ws:
        assert await _closed_with(ws) == 4403
    await http.aclose()
    assert fake_asterisk == []


async def test_logout_ends_the_relay(live, fake_asterisk):
    live.app.state.ws_recheck_interval = 0.1
    _make_browser_seat(live.settings)
    http = await live.login(ME)
    async with sip_connect(live, live.cookie_header(http)) as ws:
        await ws.send(request("REGISTER"))
        await asyncio.wait_for(ws.recv(), 5)
        page = await http.get("/console")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert (await http.post("/logout", data={"csrf": token})).status_code == 303
        assert await _closed_with(ws) == 4401
    await http.aclose()


async def test_asterisk_unreachable_closes_1011_so_the_phone_retries(live, db):
    db.asterisk_http_port = 9  # nothing listens on the discard port
    _make_browser_seat(live.settings)
    http = await live.login(ME)
    async with sip_connect(live, live.cookie_header(http)) as ws:
        assert await _closed_with(ws) == 1011
    await http.aclose()
