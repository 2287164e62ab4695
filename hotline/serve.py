"""Running the product: ``serve``, ``demo``, ``load-demo``, ``call``, ``phones`` and ``doctor``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from urllib.parse import urlparse

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from sqlmodel import select

from asterisk_conf import process
from asterisk_conf.sipp import place_call
from asterisk_conf.sipp_media import MediaUAS
from callcenter import aio
from callcenter.accounts.flows import Actor, reset_password
from callcenter.accounts.models import Account
from callcenter.bus import make_bus
from callcenter.config import Settings, get_settings
from callcenter.database import migrate, saved_id, session_scope
from callcenter.knowledge import segment
from callcenter.mail import demo_mailbox
from callcenter.statistics.follower import rebuild
from dispatch.workers import ConfigFollower
from hotline.demo import (
    DEFAULT_SEAT_CONTACT_BASE_PORT,
    DEMO_BROWSER_SEAT,
    DEMO_PASSWORD,
    load_demo,
    use_browser_phone,
)
from hotline.doctor import run_doctor
from hotline.engine import Engine
from hotline.safety import production_problems, secure_data
from web_console.app import create_app

log = logging.getLogger(__name__)

DEMO_PHONE_RING_MS = 3000
DEMO_PHONE_TALK_MS = 20000
DEMO_RESIDENTS_PORT = 5070  # the demo outside line's phones
# The console's socket carries small JSON messages both ways; uvicorn's default is 16 MiB.
WS_MAX_BYTES = 64 * 1024


async def serve(
    settings: Settings, web: bool = True, engine: bool = True, stop: asyncio.Event | None = None
) -> None:
    """Run the engine and/or the web console until ``stop`` is set (or SIGINT/SIGTERM)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    bus = make_bus(settings.redis_url)
    await bus.start()
    eng = Engine(settings, bus) if engine else None
    # A web worker without the engine follows administrators' changes itself.
    follower = ConfigFollower(bus, settings) if web and not engine else None
    server = None
    try:
        if eng:
            await eng.start()
        if follower:
            await follower.start()
        if web:
            # The segmenter's dictionary takes a second to load: loaded now, not on the first
            # search a seat types.
            warming = asyncio.create_task(asyncio.to_thread(segment.warm))
            app = create_app(settings, bus)
            app.state.engine = eng
            config = uvicorn.Config(
                app,
                host=settings.web_host,
                port=settings.web_port,
                log_level="warning",
                lifespan="on",
                ws_ping_interval=20,
                ws_max_size=WS_MAX_BYTES,
                # Frames are small JSON on the district's network: compressing each cost the
                # engine's loop more CPU than any other part of sending it, and a zlib context
                # per open console.
                ws_per_message_deflate=False,
                proxy_headers=True,
                forwarded_allow_ips=settings.trusted_proxies,
            )
            server = uvicorn.Server(config)
            server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # ours stop it
            web_task = asyncio.create_task(server.serve())
            stop_task = asyncio.create_task(stop.wait())
            await asyncio.wait({web_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            await web_task
            stop_task.cancel()
            await warming
        else:
            await stop.wait()
    finally:
        if follower:
            await follower.stop()
        if eng:
            await eng.stop()
        await bus.close()


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    secure_data(settings)
    migrate(settings)
    secure_data(settings)  # the database migrate may just have made
    if settings.production:
        problems = production_problems(settings)
        if problems:
            print(
                "refusing to start in production (CALLCENTER_PRODUCTION=true):\n"
                + "\n".join(f"  - {p}" for p in problems),
                file=sys.stderr,
            )
            return 2
    aio.run(serve(settings, web=not args.no_web, engine=not args.no_engine))
    return 0


def _cmd_load_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    secure_data(settings)
    migrate(settings)
    secure_data(settings)  # the database migrate may just have made
    with session_scope(settings) as s:
        counts = load_demo(
            s,
            residents=args.residents,
            # The fixed desk-phone contacts on this machine are the demo's (`callcenter demo`)
            # only; elsewhere the seats' phones register.
            seat_contact_base_port=None if settings.production else DEFAULT_SEAT_CONTACT_BASE_PORT,
            must_change_password=settings.production,
        )
    print(json.dumps(counts, ensure_ascii=False))
    return 0


def demo_phone_ports(settings: Settings) -> list[tuple[str, int]]:
    """Seats whose fixed SIP contact is on this machine: the demo answers them with sipp."""
    out = []
    with session_scope(settings) as s:
        for acc in s.exec(select(Account).where(Account.active, Account.sip_contact != "")):
            if acc.extension:
                url = urlparse(acc.sip_contact.replace("sip:", "sip://", 1))
                if url.hostname in ("127.0.0.1", "localhost") and url.port:
                    out.append((acc.extension, url.port))
    return out


def start_demo_mail(settings: Settings) -> Controller:
    """The demo's mail server: a real SMTP server on loopback whose Maildir the messages page
    shows, so every notice is delivered (and read there) instead of waiting for a server."""
    folder = demo_mailbox(settings)
    for part in ("tmp", "new", "cur"):  # a Maildir
        (folder / part).mkdir(parents=True, exist_ok=True)
    # aiosmtpd logs every connection at INFO: one notice would be five lines of the demo's log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(Mailbox(folder), hostname="127.0.0.1", port=settings.demo_smtp_port)
    controller.start()
    settings.smtp_host, settings.smtp_port = "127.0.0.1", settings.demo_smtp_port
    settings.smtp_user, settings.smtp_password, settings.smtp_tls = "", "", "none"
    return controller


async def _run_demo(settings: Settings, residents: int) -> None:
    secure_data(settings)
    migrate(settings)
    secure_data(settings)  # the database migrate may just have made
    with session_scope(settings) as s:
        load_demo(s, residents=residents, must_change_password=False)
        use_browser_phone(s)
    # Residents' phones behind a demo outside line (click-to-call, callbacks, follow-ups: they
    # answer, press 1 and speak); desk phones that send sound (recordings).
    if not settings.outbound_contact:
        settings.outbound_contact = f"sip:127.0.0.1:{DEMO_RESIDENTS_PORT}"
    await asyncio.to_thread(process.start, settings)
    phones = []
    mail = await asyncio.to_thread(start_demo_mail, settings)
    try:
        residents_phone = MediaUAS(port=DEMO_RESIDENTS_PORT, keys=[3000, "1"], ring_ms=DEMO_PHONE_RING_MS)
        residents_phone.start()
        phones.append(residents_phone)
        for _ext, port in demo_phone_ports(settings):
            uas = MediaUAS(port=port, ring_ms=DEMO_PHONE_RING_MS, talk_ms=DEMO_PHONE_TALK_MS)
            uas.start()
            phones.append(uas)
        url = f"http://{settings.web_host}:{settings.web_port}/"
        print(
            "\n".join(
                [
                    "",
                    "社区服务热线 demo is running / 演示已启动",
                    f"  console:  {url}",
                    f"  logins:   seat1001 … seat1004 (seats), supervisor, admin — password {DEMO_PASSWORD}",
                    f"  browser:  seat{DEMO_BROWSER_SEAT} answers in its console page (the browser phone)",
                    "  a call:   .venv/bin/callcenter call --from 13919310001  (rings a seat; the pop shows)",
                    "  outside:  residents' demo phones on 127.0.0.1:5070 (click-to-call, callbacks, 回访)",
                    f"  mail:     the demo's SMTP server 127.0.0.1:{settings.demo_smtp_port} receives every"
                    f" e-mail; read them at {url}admin/messages",
                    "  stop:     Ctrl-C",
                    "",
                ]
            ),
            flush=True,
        )
        await serve(settings)
    finally:
        mail.stop()
        for uas in phones:
            uas.stop()
        await asyncio.to_thread(process.stop, settings)


def _cmd_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.production = False  # the demo, with its published password, on this machine only
    aio.run(_run_demo(settings, args.residents))
    return 0


def _cmd_reset_password(args: argparse.Namespace) -> int:
    """A temporary password for an account (changed at its next login): how an operator takes
    the demo password off an account before serving in production."""
    settings = get_settings()
    secure_data(settings)
    migrate(settings)
    secure_data(settings)  # the database migrate may just have made
    with session_scope(settings) as s:
        acc = s.exec(select(Account).where(Account.username == args.username)).first()
        if acc is None:
            print(f"no account {args.username!r}", file=sys.stderr)
            return 1
        _acc, password = reset_password(s, Actor(username="cli", role="admin"), saved_id(acc))
    print(f"temporary password for {args.username}: {password}")
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    settings = get_settings()
    headers = {}
    if args.order_12345:
        headers[settings.header_12345_order] = args.order_12345
    if args.summary_12345:
        headers[settings.header_12345_summary] = args.summary_12345
    result = asyncio.run(
        place_call(
            settings,
            did=args.did,
            caller=args.caller,
            caller_name=args.name,
            headers=headers or None,
            source_ip=settings.trunk12345_match if args.order_12345 else settings.carrier_match,
            hold_ms=args.hold * 1000,
        )
    )
    print(result)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    return asyncio.run(run_doctor(get_settings()))


def _cmd_stats_rebuild(args: argparse.Namespace) -> int:
    print(f"{rebuild(get_settings())} queue_log lines counted again")
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the telephony engine and the web console")
    p.add_argument("--no-web", action="store_true", help="engine only (web workers elsewhere, Redis bus)")
    p.add_argument("--no-engine", action="store_true", help="web console only (needs the Redis bus)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("reset-password", help="give an account a temporary password (changed at login)")
    p.add_argument("username")
    p.set_defaults(func=_cmd_reset_password)

    p = sub.add_parser("load-demo", help="load Anning District demo data")
    p.add_argument("--residents", type=int, default=3000)
    p.set_defaults(func=_cmd_load_demo)

    p = sub.add_parser("demo", help="demo data + Asterisk + demo phones + the console, in the foreground")
    p.add_argument("--residents", type=int, default=3000)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("call", help="place a test call into the hotline from the command line (sipp)")
    p.add_argument("--from", dest="caller", default="13919310001")
    p.add_argument("--did", default="96345")
    p.add_argument("--name", default="")
    p.add_argument("--order-12345", default="", help="come in over the 12345 trunk with this order number")
    p.add_argument("--summary-12345", default="")
    p.add_argument("--hold", type=int, default=30, help="seconds the caller stays on the line")
    p.set_defaults(func=_cmd_call)

    p = sub.add_parser("doctor", help="check every hop of the call path with one real test call")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("stats-rebuild", help="count the statistics again from queue_log (engine stopped)")
    p.set_defaults(func=_cmd_stats_rebuild)
