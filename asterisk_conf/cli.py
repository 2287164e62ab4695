"""``callcenter asterisk install|render|start|stop|restart|status|reload|tls-cert``."""

from __future__ import annotations

import argparse
import json
import sys

from asterisk_conf import ivr_sounds, process, tls
from asterisk_conf.installer import ensure_asterisk, upgrade_asterisk
from asterisk_conf.render import render_config
from callcenter.config import get_settings
from callcenter.database import migrate


def _install(args: argparse.Namespace) -> int:
    settings = get_settings()
    install = upgrade_asterisk(settings) if args.upgrade else ensure_asterisk(settings)
    print(
        json.dumps(
            {
                "mode": install.mode,
                "root": str(install.root) if install.root else None,
                "binary": str(install.binary),
                "modules_dir": str(install.modules_dir),
                "data_dir": str(install.data_dir),
                "version": install.version(),
            },
            indent=2,
        )
    )
    return 0


def _render(args: argparse.Namespace) -> int:
    settings = get_settings()
    etc = render_config(settings)
    if not args.no_sounds:
        ivr_sounds.generate_all(settings)
    print(f"configuration rendered into {etc}")
    return 0


def _start(args: argparse.Namespace) -> int:
    settings = get_settings()
    migrate(settings)  # the configuration is rendered from the database: a first start makes it
    print(json.dumps(process.start(settings, timeout=args.timeout), indent=2, ensure_ascii=False))
    return 0


def _stop(args: argparse.Namespace) -> int:
    stopped = process.stop(get_settings())
    print("Asterisk stopped" if stopped else "Asterisk was not running")
    return 0


def _restart(args: argparse.Namespace) -> int:
    print(json.dumps(process.restart(get_settings(), timeout=args.timeout), indent=2, ensure_ascii=False))
    return 0


def _status(args: argparse.Namespace) -> int:
    st = process.status(get_settings())
    print(json.dumps(st, indent=2, ensure_ascii=False))
    return 0 if st["running"] or not args.check else 3


def _reload(args: argparse.Namespace) -> int:
    out = process.reload(get_settings())
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0


def _tls_cert(args: argparse.Namespace) -> int:
    settings = get_settings()
    cert, key = tls.make_self_signed(settings, args.name or [settings.sip_host, "localhost"], args.days)
    print(f"certificate {cert}\nkey {key}\n(render and reload Asterisk to use them)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("asterisk", help="install, configure and run Asterisk")
    sub = p.add_subparsers(dest="asterisk_command", required=True)

    s = sub.add_parser("install", help="find Asterisk, or build the Debian sid root for it (~1 min)")
    s.add_argument(
        "--upgrade", action="store_true", help="apt upgrade inside the Asterisk root (restart Asterisk after)"
    )
    s.set_defaults(func=_install)

    s = sub.add_parser("tls-cert", help="make a self-signed certificate for SIP over TLS (tests, a lab)")
    s.add_argument("--name", action="append", help="a host name or address (repeatable)")
    s.add_argument("--days", type=int, default=825)
    s.set_defaults(func=_tls_cert)

    s = sub.add_parser("render", help="render the configuration from settings and the database")
    s.add_argument("--no-sounds", action="store_true", help="do not generate the Mandarin prompts")
    s.set_defaults(func=_render)

    for name, func, text in (
        ("start", _start, "install if needed, render and start Asterisk"),
        ("restart", _restart, "stop and start Asterisk"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--timeout", type=float, default=60, help="seconds to wait for FullyBooted")
        s.set_defaults(func=func)

    s = sub.add_parser("stop", help="stop Asterisk")
    s.set_defaults(func=_stop)

    s = sub.add_parser("status", help="print Asterisk's status as JSON")
    s.add_argument("--check", action="store_true", help="exit 3 when Asterisk is not running")
    s.set_defaults(func=_status)

    s = sub.add_parser("reload", help="render again and apply to the running Asterisk (core reload)")
    s.set_defaults(func=_reload)
