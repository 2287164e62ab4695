"""Call recordings: where they are, and the retention purge (``callcenter recordings purge``).

The dialplan records each answered call with MixMonitor into Asterisk's spool/monitor as
``<uniqueid>.wav``; the call record holds that file name. Files older than
``recording_retention_days`` are deleted, the call records forget them, and the purge is audited.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from sqlmodel import col, select

from callcenter import ids
from callcenter.audit.service import record as audit
from callcenter.calls.models import CallRecord
from callcenter.config import Settings, get_settings
from callcenter.database import session_scope

RECORDING = re.compile(ids.CALL_ID.pattern + r"\.wav")


def recordings_dir(settings: Settings) -> Path:
    return settings.asterisk_instance_dir() / "spool" / "monitor"


def purge(
    settings: Settings, days: int | None = None, now: float | None = None, dry_run: bool = False
) -> list[str]:
    """Delete recordings older than ``days`` (default: the setting); return their names."""
    days = settings.recording_retention_days if days is None else days
    if days < 0:
        raise ValueError("days must be 0 or more")
    cutoff = (now or time.time()) - days * 86400
    folder = recordings_dir(settings)
    old = (
        sorted(
            p.name
            for p in folder.glob("*.wav")
            if RECORDING.fullmatch(p.name) and p.is_file() and p.stat().st_mtime < cutoff
        )
        if folder.is_dir()
        else []
    )
    if dry_run or not old:
        return old
    with session_scope(settings) as s:
        for rec in s.exec(select(CallRecord).where(col(CallRecord.recording).in_(old))).all():
            rec.recording = ""
            s.add(rec)
        audit(
            s, "system", "recording.purge", target=f"{len(old)} files", older_than_days=days, files=old[:500]
        )
        s.commit()
    for name in old:
        (folder / name).unlink(missing_ok=True)
    return old


def _cmd_purge(args: argparse.Namespace) -> int:
    names = purge(get_settings(), days=args.days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(names)} recording(s)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("recordings", help="call recordings")
    rec = p.add_subparsers(dest="recordings_command", required=True)
    q = rec.add_parser("purge", help="delete recordings older than the retention period")
    q.add_argument("--days", type=int, default=None, help="older than this many days (default: the setting)")
    q.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    q.set_defaults(func=_cmd_purge)
