"""``callcenter sms-reply``: hand an outlet's SMS reply to the system from the command line.

For the demo (the log provider has no inbound channel) and for an operator typing in a reply an
outlet phoned in. It goes through exactly the webhook's checks: the number must be registered
for the outlet that holds the order."""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from callcenter.config import get_settings
from callcenter.database import migrate, session_scope
from dispatch.sms_replies import handle_reply
from sms.inbound import receive


def _cmd_reply(args: argparse.Namespace) -> int:
    settings = get_settings()
    migrate(settings)
    with session_scope(settings) as session:
        outcome = receive(
            session,
            settings,
            handle_reply,
            provider="cli",
            provider_id="cli-" + secrets.token_hex(8),
            sender=args.sender,
            body=" ".join(args.text),
        )
    print(f"{outcome.code}: {outcome.reply}")
    return 0 if outcome.code == "applied" else 1


def register(sub: Any) -> None:
    p = sub.add_parser("sms-reply", help="apply an outlet's SMS reply (签收/进度/办结/退单 <code> …)")
    p.add_argument("--from", dest="sender", required=True, help="the outlet's registered phone number")
    p.add_argument("text", nargs="+", help="the reply, e.g. 签收 1234")
    p.set_defaults(func=_cmd_reply)
