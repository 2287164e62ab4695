"""Fixtures for the seat console: a tmp SQLite database with accounts, an in-process bus, the
app under TestClient, and the same app served by uvicorn on 127.0.0.1 inside the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlmodel import SQLModel
from websockets.asyncio.client import connect as ws_connect

from callcenter.accounts.models import Account
from callcenter.accounts.service import hash_password
from callcenter.bus import InProcessBus
from callcenter.config import Settings
from callcenter.database import dispose_engine, get_engine, session_scope
from hotline.models import import_all_models
from tests.conftest import fresh_postgres_database, on_postgres
from tests.hostile import WebTarget
from web_console.app import SESSION_COOKIE, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "use httpx2" (not installed here)
    from fastapi.testclient import TestClient

# username → (display name, role, extension, active)
ACCOUNTS = {
    "seat1001": ("张丽", "seat", "1001", True),
    "seat1002": ("李强", "seat", "1002", True),
    "super": ("王班长", "supervisor", None, True),
    "admin": ("系统管理员", "admin", None, True),
    "outlet": ("十里店服务站", "outlet", None, True),
    "gone": ("离职座席", "seat", "1009", False),
}


def password_of(username: str) -> str:
    return f"pw-{username}-Secret!"


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="session")
def password_hashes() -> dict[str, str]:
    # Argon2 takes ~0.1 s a hash: hash once per run, not once per test.
    return {name: hash_password(password_of(name)) for name in ACCOUNTS}


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The app's settings on the test's own database: SQLite in its folder, or (``--database
    postgres``) a PostgreSQL database of its own, migrated."""
    url = ""
    if on_postgres(request.config):
        url = fresh_postgres_database(
            request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_template")
        )
    s = Settings(
        data_dir=tmp_path,
        database_url=url,
        session_secret="test-session-secret-" + "x" * 24,
        production=False,
        _env_file=None,
    )
    yield s
    if url:
        dispose_engine(s)


def add_accounts(settings: Settings, hashes: dict[str, str]) -> None:
    """The accounts of ``ACCOUNTS``, with the passwords ``password_of`` gives."""
    with session_scope(settings) as session:
        for username, (display, role, ext, active) in ACCOUNTS.items():
            session.add(
                Account(
                    username=username,
                    display_name=display,
                    password_hash=hashes[username],
                    role=role,
                    extension=ext,
                    active=active,
                )
            )
        session.commit()


@pytest.fixture
def db(settings: Settings, password_hashes: dict[str, str]) -> Settings:
    import_all_models()
    SQLModel.metadata.create_all(get_engine(settings))
    add_accounts(settings, password_hashes)
    return settings


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def app(db: Settings, bus: InProcessBus):
    return create_app(db, bus)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def csrf_from(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client, username: str, password: str | None = None, **kw):
    """Log in through the form (GET for the token, then POST); returns the POST's response."""
    page = client.get("/login")
    token = csrf_from(page.text)
    return client.post(
        "/login",
        data={"username": username, "password": password or password_of(username), "csrf": token},
        follow_redirects=False,
        **kw,
    )


def sample_pop(linkedid: str = "1700000000.12", state: str = "ringing", **over) -> dict:
    """A pop as the engine publishes it on seat.<ext>."""
    now = time.time()
    msg = {
        "type": "pop",
        "linkedid": linkedid,
        "state": state,
        "caller": "+8613912345678",
        "caller_display": "139 1234 5678",
        "caller_name": "WANG XIUYING",
        "did": "96345",
        "queue": "hotline",
        "source": "12345",
        "order_12345": "GS2026112800123",
        "summary_12345": "楼道灯坏了三天，老人夜间上下楼不便，请社区尽快维修。",
        "resident": {
            "id": 12,
            "name": "王秀英",
            "community": "十里店社区",
            "jurisdiction": "十里店街道",
            "grid": "第3网格",
            "address": "安宁区十里店南街 28 号 3 单元 502",
            "elderly": True,
            "lives_alone": True,
            "age": 81,
        },
        "history": {
            "calls": 3,
            "last_call": {"at": "2026-11-27T09:12:00", "outcome": "answered", "seat": "1002"},
            "orders": 1,
            "last_order": {
                "number": "AN20261127-0003",
                "type": "求助",
                "status": "办理",
                "created_at": "2026-11-27T09:20:00",
                "summary": "代购药品",
            },
        },
        "ringing_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 4)) + ".123",
        "answered_at": None,
        "sent_at": now,
    }
    if state == "talking":
        msg["ringing_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 80)) + ".000"
        msg["answered_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 65)) + ".000"
    msg.update(over)
    return msg


class Helpers:
    """Helpers for the tests, handed out by the ``web`` fixture (no imports between test files)."""

    login = staticmethod(login)
    csrf = staticmethod(csrf_from)
    password = staticmethod(password_of)
    TestClient = TestClient
    pop = staticmethod(sample_pop)


@pytest.fixture
def web() -> type[Helpers]:
    return Helpers


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers (the test runner keeps Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclass
class Live:
    app: object
    bus: InProcessBus
    settings: Settings
    base_url: str
    ws_url: str

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    async def login(self, username: str, password: str | None = None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.base_url, follow_redirects=False, trust_env=False)
        page = await client.get("/login")
        r = await client.post(
            "/login",
            data={
                "username": username,
                "password": password or password_of(username),
                "csrf": csrf_from(page.text),
            },
        )
        assert r.status_code == 303, r.text
        return client

    @staticmethod
    def cookie_header(client: httpx.AsyncClient) -> str:
        return f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"

    def connect(self, cookie: str | None = None, origin: str | None = "same", path: str = ""):
        """A WebSocket client to /ws/console (``origin="same"``: this server's origin)."""
        headers = {"Cookie": cookie} if cookie else {}
        return ws_connect(
            self.ws_url + path,
            additional_headers=headers,
            origin=self.base_url if origin == "same" else origin,
            proxy=None,
            open_timeout=5,
            close_timeout=2,
        )


@pytest.fixture
async def live(app, bus, db):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield Live(app, bus, db, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/console")
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        sock.close()


# --- the app as an operator runs it: uvicorn in a process of its own -----------------------

TWILIO_TOKEN = "twilio-auth-token-for-tests"
TWILIO_SID = "AC" + "0" * 32
ALIYUN_TOKEN = "aliyun-inbound-token-for-tests"
OPEN311_KEY = "open311-post-key-for-tests"
OPEN311_READ_KEY = "open311-read-key-for-tests"

_SERVE = (
    "import sys, uvicorn\n"
    "from callcenter.bus import InProcessBus\n"
    "from callcenter.config import Settings\n"
    "from web_console.app import create_app\n"
    "uvicorn.run(create_app(Settings(), InProcessBus()), host='127.0.0.1', port=int(sys.argv[1]),\n"
    "            log_level='warning', lifespan='off', access_log=False)\n"
)


@dataclass
class Served:
    """The web app in its own uvicorn process (``served`` fixture)."""

    proc: subprocess.Popen
    settings: Settings
    base_url: str
    port: int

    def rss_kib(self, field: str = "VmRSS") -> int:
        """The process's resident memory from /proc (``VmHWM``: its peak so far)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field}")

    aliyun_token = ALIYUN_TOKEN
    open311_read_key = OPEN311_READ_KEY

    def web_target(self) -> WebTarget:
        """What the hostile-input feeders need: the provider secrets and a seat's session."""
        seat, csrf = self.login("seat1001")
        return WebTarget(
            self.base_url,
            TWILIO_TOKEN,
            TWILIO_SID,
            ALIYUN_TOKEN,
            OPEN311_KEY,
            f"{SESSION_COOKIE}={seat.cookies[SESSION_COOKIE]}",
            csrf,
        )

    def role_headers(self, username: str | None) -> dict[str, str]:
        """The session cookie and CSRF token of a signed-in account (none for a stranger)."""
        if username is None:
            return {}
        client, csrf = self.login(username)
        return {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}", "X-CSRF-Token": csrf}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, follow_redirects=False, trust_env=False, timeout=30)

    def login(self, username: str) -> tuple[httpx.Client, str]:
        """A signed-in client and its CSRF token."""
        client = self.client()
        page = client.get("/login")
        r = client.post(
            "/login",
            data={"username": username, "password": password_of(username), "csrf": csrf_from(page.text)},
        )
        assert r.status_code == 303, r.text
        home = client.get(r.headers["location"], follow_redirects=True)
        return client, csrf_from(home.text)


@dataclass
class FuzzRun:
    """What one schemathesis run sent and got (from its HAR report)."""

    requests: int
    server_errors: list[str]  # "METHOD url -> status" of every 5xx
    output: str


FUZZ_ROLES = {
    "seat": "seat1001",
    "supervisor": "super",
    "admin": "admin",
    "outlet": "outlet",
    "anonymous": None,
}


def run_fuzz(
    base_url: str,
    schema: Path,
    headers: dict[str, str],
    workdir: Path,
    max_examples: int = 25,
    seed: int = 311,
    phases: str = "examples,coverage,fuzzing",
) -> FuzzRun:
    """schemathesis against the running app from ``schema``, with ``headers`` on every request
    (a role's session cookie and CSRF token). Only the server-error check decides: a refusal
    (401/403/404/422) is the right answer to most of what it sends. ``phases``: schemathesis'
    --phases (the coverage phase sends most of the requests whatever ``max_examples`` is)."""
    har = workdir / "fuzz.har"
    har.unlink(missing_ok=True)
    cmd = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(schema),
        "--url",
        base_url,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--generation-deterministic",
        "--workers",
        "2",
        "--no-shrink",
        "--continue-on-failure",
        "--phases",
        phases,
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "30",
        "--report",
        "har",
        "--report-har-path",
        str(har),
        "--no-color",
    ]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=workdir, check=False)
    output = proc.stdout + proc.stderr
    assert har.exists(), output[-3000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    errors = [
        f"{e['request']['method']} {e['request']['url']} -> {e['response']['status']}"
        for e in entries
        if e["response"]["status"] >= 500
    ]
    return FuzzRun(len(entries), errors, output)


CHUNK_SIZE = 65536
# Bodies Starlette's own form limits (1 MiB a field, 1000 fields) would let through to 1 GB: the
# urlencoded body is 64 KiB fields, the multipart one a single file part.
FORM_CHUNK = b"f=" + b"a" * (CHUNK_SIZE - 3) + b"&"
MULTIPART_HEAD = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.xlsx"\r\n\r\n'


def stream_chunked(
    port: int, path: str, headers: dict[str, str], total: int = 50 * 1024 * 1024
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
    # poll, not select: a long test session may hold file descriptors above select's 1024 limit.
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        while sent < total:
            if poller.poll(0):
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
        except TimeoutError:
            if answer:
                break  # answered, but the connection was kept open: the answer is what counts
            raise
        if not data:
            break
        answer += data
    sock.close()
    assert answer.startswith(b"HTTP/1.1 "), f"no answer after {sent} bytes: {answer[:200]!r}"
    return int(answer[9:12]), sent, answer


Helpers.stream_chunked = staticmethod(stream_chunked)  # type: ignore[attr-defined]
Helpers.run_fuzz = staticmethod(run_fuzz)  # type: ignore[attr-defined]
Helpers.FUZZ_ROLES = FUZZ_ROLES  # type: ignore[attr-defined]


@contextlib.contextmanager
def serve_process(db: Settings, workdir: Path) -> Iterator[Served]:
    """The app for ``db``'s data dir in a uvicorn process of its own, stopped on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "CALLCENTER_DATA_DIR": str(db.data_dir),
        "CALLCENTER_DATABASE_URL": db.database_url,
        "CALLCENTER_SESSION_SECRET": db.session_secret,
        "CALLCENTER_PRODUCTION": "false",
        "CALLCENTER_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "CALLCENTER_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "CALLCENTER_ALIYUN_INBOUND_TOKEN": ALIYUN_TOKEN,
        "CALLCENTER_OPEN311_API_KEYS": json.dumps([OPEN311_KEY]),
        "CALLCENTER_OPEN311_READ_KEYS": json.dumps([OPEN311_READ_KEY]),
        "CALLCENTER_STATS_API_TOKEN": "stats-token-for-tests",
        "CALLCENTER_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (workdir / "uvicorn.log").read_text()
            try:
                if httpx.get(base_url + "/healthz", trust_env=False, timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)
        settings = db.model_copy(
            update={
                "twilio_auth_token": TWILIO_TOKEN,
                "twilio_account_sid": TWILIO_SID,
                "aliyun_inbound_token": ALIYUN_TOKEN,
                "public_base_url": base_url,
            }
        )
        yield Served(proc, settings, base_url, port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def served(db: Settings, tmp_path: Path):
    with serve_process(db, tmp_path / "served") as s:
        yield s


def statuses_until_answered(client, path: str, within: float = 20) -> list[int]:
    """The statuses of ``path`` asked every 0.2 s until it answers 200 (a part back after an
    outage), or ``within`` seconds passed."""
    import time

    statuses: list[int] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        statuses.append(client.get(path).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    return statuses
