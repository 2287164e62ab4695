"""``callcenter kb``: grant an account a knowledge-base role (editor, reviewer), and cut the
search index anew (after a change of the dictionary or synonyms made outside the console)."""

from __future__ import annotations

import argparse
from typing import Any

from callcenter.audit.service import record as audit
from callcenter.config import get_settings
from callcenter.database import migrate, session_scope
from callcenter.knowledge import search, service
from callcenter.knowledge.models import KbRole


def _cmd_grant(args: argparse.Namespace) -> int:
    settings = get_settings()
    migrate(settings)
    with session_scope(settings) as s:
        service.grant(s, args.username, args.role)
        audit(s, "cli", "kb.grant", target=f"account:{args.username}", role="admin", kb_role=args.role)
        s.commit()
    print(f"{args.username} is a knowledge-base {args.role}")
    return 0


def _cmd_reindex(args: argparse.Namespace) -> int:
    settings = get_settings()
    migrate(settings)
    with session_scope(settings) as s:
        n = search.rebuild(s)
        s.commit()
    print(f"{n} published articles indexed")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("kb", help="the knowledge base: roles and the search index")
    kb = p.add_subparsers(dest="kb_command", required=True)
    g = kb.add_parser("grant", help="give an account a knowledge-base role")
    g.add_argument("username")
    g.add_argument("role", choices=[r.value for r in KbRole])
    g.set_defaults(func=_cmd_grant)
    r = kb.add_parser("reindex", help="segment and index every published article anew")
    r.set_defaults(func=_cmd_reindex)
