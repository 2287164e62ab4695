"""Shared fixtures: settings on a temporary data dir with a migrated SQLite database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from callcenter import i18n
from callcenter.ami.client import close_manager, open_manager
from callcenter.config import Settings, set_settings
from callcenter.database import migrate

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The product runs in production unless told otherwise; the tests use throwaway secrets and the
# demo password, so they say "not production" here (this process and the apps it starts).
# Tests of production itself set production=True on their own settings.
os.environ["CALLCENTER_PRODUCTION"] = "false"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the database of the web console's and the call path's tests: the embedded SQLite, "
        "or a throwaway local PostgreSQL server (`make test` runs a part of the suite on each)",
    )
    parser.addoption(
        "--part",
        choices=PARTS,
        default=None,
        help="one part of the suite (scripts/run-tests.sh runs the first two at once, then the "
        "third): calls (the end-to-end tests through Asterisk), other (everything else), "
        "benchmarks (the benchmarks' smoke runs and their tools)",
    )


PARTS = ("calls", "other", "benchmarks")


def part_of(item: pytest.Item) -> str:
    path = item.nodeid.split("::", 1)[0]
    if path.startswith("tests/benchmarks/"):
        return "benchmarks"
    return "calls" if path.startswith("tests/e2e/") else "other"


def on_postgres(config: pytest.Config) -> bool:
    return config.getoption("--database") == "postgres"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of PostgreSQL's own behaviour (marked ``postgres``) run in the PostgreSQL pass only:
    deselected, not skipped, in the SQLite one. With ``--part``, the other parts' tests are
    deselected too."""
    part = config.getoption("--part")
    if part is not None:
        elsewhere = [item for item in items if part_of(item) != part]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if part_of(item) == part]
    if on_postgres(config):
        return
    dropped = [item for item in items if item.get_closest_marker("postgres")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


def missing_part(reason: str) -> None:
    """A real part (Asterisk, sipp, Redis, Chromium) is missing: a failure in CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(f"{reason} (not CI)")


def require(binary: str) -> str:
    """The path of a program the test needs (see ``missing_part``)."""
    path = shutil.which(binary)
    if path is None:
        missing_part(f"{binary} is not installed")
    return path


@pytest.fixture(autouse=True, scope="session")
def _catalogue_keys_are_strict():
    """A key missing in a catalogue fails the test instead of being rendered as the key itself."""
    i18n.strict_keys()
    yield
    i18n.strict_keys(False)


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = set_settings(Settings(data_dir=tmp_path / "var", _env_file=None))
    migrate(s)
    return s


class AmiWatch:
    """The test's own AMI connection: every event Asterisk sent, independent of the app."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.manager = None

    async def open(self, settings: Settings) -> AmiWatch:
        self.manager = await open_manager(settings, lambda _m, msg: self.events.append(dict(msg)))
        return self

    def close(self) -> None:
        if self.manager is not None:
            close_manager(self.manager)

    def seen(self, name: str, **fields: str) -> list[dict]:
        """Events called ``name`` whose fields start with the given values."""
        return [
            e
            for e in self.events
            if e.get("Event") == name and all(str(e.get(k, "")).startswith(v) for k, v in fields.items())
        ]

    async def wait_for(self, what, timeout: float = 30.0, **fields: str) -> dict:
        """The first event matching a predicate, or an event name and field prefixes."""
        pred = what if callable(what) else (lambda e: e in self.seen(what, **fields))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if pred(e):
                    return e
            await asyncio.sleep(0.05)
        last = json.dumps(self.events[-10:], ensure_ascii=False)
        raise AssertionError(f"AMI event {what} {fields} not seen; last events: {last}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mail_part(raw: bytes, content_type: str = "text/plain") -> str:
    """The decoded text of a received mail's part of that type."""
    import email

    [text] = [
        p.get_payload(decode=True).decode()
        for p in email.message_from_bytes(raw).walk()
        if p.get_content_type() == content_type
    ]
    return text


REDIS_PASSWORD = "test-redis-" + "p" * 16


class RedisServer:
    """A redis-server that wants a password (requirepass), as the product's Redis must; on a
    fixed port, so a test can stop it and start it again where the clients expect it."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.binary = require("redis-server")
        self.folder = folder
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--requirepass",
                REDIS_PASSWORD,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


class SmtpFront:
    """A mail server as its sender reaches it, on a fixed port: relayed to a real SMTP server
    (aiosmtpd on ``target_port``) while ``mode`` is "ok"; while "errors", every command after the
    greeting and the login answered 451 (a server refusing for a while); while "silent",
    connections accepted and never answered (a server that hangs: the sender's timeout must end
    the round)."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self.mode = "ok"
        self._server: asyncio.Server | None = None

    async def start(self) -> SmtpFront:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.mode == "silent":
                await reader.read()  # until the sender gives up
            elif self.mode == "errors":
                writer.write(b"220 busy.example ESMTP\r\n")
                while line := await reader.readline():
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        writer.write(b"250-busy.example\r\n250 AUTH PLAIN LOGIN\r\n")
                    elif verb == b"AUTH":
                        writer.write(b"235 2.7.0 Authentication successful\r\n")
                    elif verb == b"QUIT":
                        writer.write(b"221 bye\r\n")
                        break
                    else:
                        writer.write(b"451 4.3.0 Temporary local problem, try again later\r\n")
                    await writer.drain()
            else:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

                async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                    with contextlib.suppress(ConnectionError, OSError):
                        while data := await src.read(65536):
                            dst.write(data)
                            await dst.drain()
                    dst.close()

                await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class PostgresServer:
    """A throwaway PostgreSQL server (Debian's postgresql) on a free port, run as `postgres`;
    a test may stop it and start it again (a database restart under the app)."""

    def __init__(self) -> None:
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bindirs or shutil.which("runuser") is None:
            missing_part("PostgreSQL server (Debian package postgresql) is not installed")
        self.bindir = bindirs[-1]
        # Outside pytest's root-only folders: the server runs as the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="cc-pg-"))
        self.data = self.root / "data"
        self.as_pg: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "callcenter")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/callcenter"

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_pg, str(self.bindir / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "log"), "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    server = PostgresServer()
    yield server.url
    server.remove()


@pytest.fixture(scope="session")
def postgres_template(postgres_url, tmp_path_factory) -> str:
    """A database migrated to the newest revision once, the template of each test's own."""
    from sqlalchemy import create_engine, text

    from callcenter.database import dispose_engine

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE cc_template"))
    admin.dispose()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pg-template"),
        database_url=postgres_url.rsplit("/", 1)[0] + "/cc_template",
        _env_file=None,
    )
    migrate(settings)
    dispose_engine(settings)  # a template must have no connection when it is copied
    return "cc_template"


def fresh_postgres_database(postgres_url: str, template: str) -> str:
    """A new database copied from the migrated template (a fraction of a second); its URL."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def fake_system_install(tmp_path):
    """A system-mode installation whose data dir is a small fake (no Asterisk needed)."""
    data = tmp_path / "system-share"
    for d in ("sounds/en", "sounds/en_US_f_Allison", "firmware", "keys", "agi-bin"):
        (data / d).mkdir(parents=True)
    from asterisk_conf.installer import AsteriskInstall

    return AsteriskInstall(
        mode="system",
        root=None,
        binary=Path("/usr/sbin/asterisk"),
        modules_dir=Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
        data_dir=data,
    )


CHROMIUM = Path("/usr/bin/chromium")  # Debian's, driven by Playwright; never downloaded
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser():
    """A headless Chromium for one test."""
    if not CHROMIUM.exists():
        missing_part(f"{CHROMIUM} is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()
