"""The ``callcenter`` command: every domain's sub-commands, registered here."""

from __future__ import annotations

import argparse
import logging
import sys

from asterisk_conf.cli import register as register_asterisk
from callcenter.callcontrol.recordings import register as register_recordings
from callcenter.config import get_settings
from callcenter.database import migrate
from callcenter.knowledge.cli import register as register_knowledge
from dispatch.cli import register as register_dispatch
from hotline.serve import register as register_serve


def _cmd_migrate(args: argparse.Namespace) -> int:
    migrate(get_settings())
    print("database is at the newest schema")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description="Community hotline call center")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    p.set_defaults(func=_cmd_migrate)

    register_asterisk(sub)
    register_serve(sub)
    register_dispatch(sub)
    register_recordings(sub)
    register_knowledge(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Alembic names each of its plugins at INFO on every start: noise before the useful lines.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
