"""The browser phone's server side: its SIP credentials over the session, and ``/sip``, the SIP
over WebSocket relay to Asterisk's loopback HTTP server on the console's own origin.

One origin serves the page and the voice signalling, so a browser never talks to Asterisk's HTTP
server directly (it stays on 127.0.0.1, see ``asterisk_conf/templates/http.conf.j2``), the
console's TLS certificate covers both, and Chromium's local-network rules see one private origin.
The relay lets through only a signed-in browser seat, and of what that seat sends only
SIP that speaks for its own endpoint: a REGISTER or a new INVITE must come ``From`` the seat's
endpoint (Asterisk's digest authentication then checks the password as for any phone). Media
(DTLS-SRTP) flows between the browser and Asterisk directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass

import websockets
from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketState

from callcenter import ids
from callcenter.accounts.models import Account
from callcenter.config import Settings
from web_console.access import ROUTE_ROLES
from web_console.deps import CurrentAccount, protected_router
from web_console.protocol import CloseCode
from web_console.sessions import resolve_account
from web_console.sockets import close_socket, origin_ok

log = logging.getLogger(__name__)

router = protected_router()
# The relay checks the session itself (as the console socket does): no HTTP dependency on a socket.
relay = APIRouter()

SIP_SUBPROTOCOL = "sip"
SIP_PATH = "/sip"
MAX_SIP_MESSAGE = 16 * 1024  # a SIP message with SDP is a few kB; anything bigger is not a phone's
# Out-of-dialog requests a phone may start; everything else must belong to a dialog (To tag).
_START_METHODS = frozenset({"REGISTER", "INVITE"})
_DIALOG_METHODS = frozenset(
    {"ACK", "BYE", "CANCEL", "INFO", "INVITE", "UPDATE", "PRACK", "NOTIFY", "OPTIONS"}
)
_COMPACT = {"f": "from", "t": "to", "v": "via", "i": "call-id"}
_REQUEST_LINE = re.compile(r"([A-Z]{2,16}) (\S+) SIP/2\.0")
_URI_USER = re.compile(r"<?sips?:([^@;>\s]+)@")
_TAG = re.compile(r";\s*tag=", re.IGNORECASE)


def phone_endpoint(account: Account) -> str | None:
    """The PJSIP endpoint of a seat's browser phone, or None when the account has none. A seat
    with desk phones too has a browser endpoint of its own (``web<ext>``): the relay lets the
    browser speak for that endpoint only, never for the desk phones'."""
    if not ids.EXTENSION.fullmatch(account.extension or ""):
        return None
    return account.browser_endpoint


def phone_digest(account: Account) -> tuple[str, str] | None:
    """The seat's SIP digest secret (HA1 = MD5(user:realm:password), the only form stored) and
    its realm: what JsSIP needs to answer Asterisk's challenge, so no password reaches the browser."""
    if phone_endpoint(account) is None or not (account.sip_digest and account.sip_realm):
        return None
    return account.sip_digest, account.sip_realm


@router.get("/api/phone")
def phone_credentials(account: CurrentAccount) -> JSONResponse:
    """The seat's SIP account for the browser phone, never cached (the page itself carries none)."""
    endpoint = phone_endpoint(account)
    digest = phone_digest(account)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if endpoint is None or digest is None:
        return JSONResponse({"enabled": False}, headers=headers)
    ha1, realm = digest
    return JSONResponse(
        {
            "enabled": True,
            "extension": account.extension,
            "uri": f"sip:{endpoint}@callcenter.invalid",
            # The digest is made for the seat's SIP account (``seat<ext>``), which the browser
            # endpoint of a seat with both kinds of phone shares (its auth's user name).
            "authorization_user": account.endpoint,
            "ha1": ha1,
            "realm": realm,
            "display_name": account.display_name or account.username,
            "ws_path": SIP_PATH,
        },
        headers=headers,
    )


@dataclass(frozen=True)
class SipHead:
    """What the relay reads of a SIP message: the start line and the headers it checks."""

    method: str | None  # None for a response
    headers: dict[str, str]

    @property
    def in_dialog(self) -> bool:
        return bool(_TAG.search(self.headers.get("to", "")))

    def header_lines(self, *names: str) -> list[str]:
        return [f"{n}: {self.headers[n.lower()]}" for n in names if n.lower() in self.headers]


def parse_head(text: str) -> SipHead | None:
    """The start line and the first value of each header, or None when this is not SIP."""
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    first = lines[0]
    if first.startswith("SIP/2.0 "):
        method = None
    elif m := _REQUEST_LINE.fullmatch(first):
        method = m.group(1)
    else:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, value.strip())
    return SipHead(method, headers)


def uri_user(header: str) -> str | None:
    m = _URI_USER.search(header)
    return m.group(1) if m else None


def check_outgoing(text: str, endpoint: str) -> str | None:
    """Why a message from the seat's browser must not reach Asterisk, or None when it may.

    Keepalives (CRLF) and responses pass. A REGISTER or a new INVITE must be ``From`` the seat's
    own endpoint; other requests must belong to a dialog (a tagged ``To``), except CANCEL.
    """
    if not text.strip():
        return None  # RFC 5626 keepalive
    if len(text.encode()) > MAX_SIP_MESSAGE:
        return "message too large"
    head = parse_head(text)
    if head is None:
        return "not a SIP message"
    if head.method is None:
        return None
    if head.method in _START_METHODS and not head.in_dialog:
        if uri_user(head.headers.get("from", "")) != endpoint:
            return f"{head.method} not from {endpoint}"
        return None
    if head.method == "CANCEL" or (head.in_dialog and head.method in _DIALOG_METHODS):
        return None
    return f"{head.method} outside a dialog"


def forbidden_response(text: str, reason: str) -> str | None:
    """A SIP 403 for a refused request (None for what gets no response: ACK, responses)."""
    head = parse_head(text)
    if head is None or head.method in (None, "ACK"):
        return None
    lines = ["SIP/2.0 403 Forbidden", *head.header_lines("Via", "From", "To", "Call-ID", "CSeq")]
    lines += [f'Warning: 399 callcenter "{reason}"', "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def asterisk_ws_url(settings: Settings) -> str:
    return f"ws://127.0.0.1:{int(settings.asterisk_http_port)}/ws"


@relay.websocket(SIP_PATH)
async def sip_relay(websocket: WebSocket) -> None:
    """SIP over WebSocket between a browser seat's phone and Asterisk (see the module's text).

    Closes 4401 without a valid session, 4403 for a role the table does not allow or a foreign
    Origin, 4404 for an account without a browser phone, 1011 when Asterisk cannot be reached (the
    phone reconnects and registers again by itself once it can).
    """
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    await websocket.accept(subprotocol=SIP_SUBPROTOCOL if SIP_SUBPROTOCOL in offered else None)
    state = websocket.app.state
    if not origin_ok(websocket):
        await close_socket(websocket, CloseCode.FORBIDDEN, "cross-origin request refused")
        return
    session = dict(websocket.scope.get("session") or {})
    account = await run_in_threadpool(resolve_account, state, session)
    if account is None:
        await close_socket(websocket, CloseCode.UNAUTHENTICATED, "not logged in")
        return
    endpoint = phone_endpoint(account)
    if account.role not in ROUTE_ROLES[SIP_PATH] or account.must_change_password:
        await close_socket(websocket, CloseCode.FORBIDDEN, "role may not use the phone")
        return
    if endpoint is None:
        await close_socket(websocket, CloseCode.NO_EXTENSION, "no browser phone for this account")
        return
    settings: Settings = state.settings
    try:
        upstream = await websockets.connect(
            asterisk_ws_url(settings),
            subprotocols=[websockets.Subprotocol(SIP_SUBPROTOCOL)],
            max_size=MAX_SIP_MESSAGE * 4,
            open_timeout=5,
            ping_interval=20,
        )
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        log.warning("SIP relay for %s: Asterisk unreachable (%r)", account.username, exc)
        await close_socket(websocket, CloseCode.SERVER_ERROR, "Asterisk unreachable")
        return
    log.info("SIP relay of %s opened", account.username)

    async def from_browser() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue  # SIP over WebSocket is text frames (RFC 7118); binary is ignored
            refusal = check_outgoing(text, endpoint)
            if refusal is not None:
                log.warning("SIP relay for %s refused a message: %s", account.username, refusal)
                reply = forbidden_response(text, refusal)
                if reply is not None:
                    await websocket.send_text(reply)
                continue
            await upstream.send(text)

    async def from_asterisk() -> None:
        async for data in upstream:
            if isinstance(data, str):
                await websocket.send_text(data)

    async def recheck() -> int:
        """Ends the relay when the session ends (4401) or the seat loses its browser phone (4404)."""
        while True:
            await asyncio.sleep(state.ws_recheck_interval)
            current = await run_in_threadpool(resolve_account, state, session)
            if current is None:
                return CloseCode.UNAUTHENTICATED
            if phone_endpoint(current) != endpoint:
                return CloseCode.NO_EXTENSION

    tasks = [
        asyncio.create_task(from_browser(), name="sip-from-browser"),
        asyncio.create_task(from_asterisk(), name="sip-from-asterisk"),
        asyncio.create_task(recheck(), name="sip-recheck"),
    ]
    # 1011 unless the session ended: the phone's JsSIP reconnects (and registers again) by itself.
    code: int = CloseCode.SERVER_ERROR
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled():
                continue
            if (failure := task.exception()) is not None:
                log.info("SIP relay of %s ended: %r", account.username, failure)
            elif task.get_name() == "sip-recheck":
                code = task.result() or CloseCode.SERVER_ERROR
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await upstream.close()
        if websocket.application_state == WebSocketState.CONNECTED:
            await close_socket(websocket, code, "relay closed")
        log.info("SIP relay of %s closed", account.username)
