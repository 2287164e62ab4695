"""Out-of-hours voicemail: where it is kept, and the retention purge (a resident's voice is not
kept for ever). The engine runs :class:`VoicemailPurge` every ``voicemail_purge_interval_s``:
voicemails older than ``voicemail_retention_days`` are deleted, their items forget the file, and
the purge is audited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from pathlib import Path

from sqlmodel import col, select

from callcenter import ids
from callcenter.audit.service import record as audit
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.ivr.models import CallerRequest

log = logging.getLogger(__name__)

VOICEMAIL_DIR = "cc-voicemail"  # under the instance's spool folder
VOICEMAIL = re.compile(ids.CALL_ID.pattern + r"\.wav")


def voicemail_dir(settings: Settings) -> Path:
    return settings.asterisk_instance_dir() / "spool" / VOICEMAIL_DIR


def purge_voicemail(settings: Settings, days: float | None = None, now: float | None = None) -> list[str]:
    """Delete voicemails older than ``days`` (default: the setting); return their names."""
    days = settings.voicemail_retention_days if days is None else days
    if days < 0:
        raise ValueError("days must be 0 or more")
    cutoff = (now if now is not None else time.time()) - days * 86400
    folder = voicemail_dir(settings)
    if not folder.is_dir():
        return []
    old = sorted(
        p.name
        for p in folder.glob("*.wav")
        if VOICEMAIL.fullmatch(p.name) and p.is_file() and p.stat().st_mtime < cutoff
    )
    if not old:
        return []
    with session_scope(settings) as s:
        for item in s.exec(select(CallerRequest).where(col(CallerRequest.recording).in_(old))).all():
            item.recording = ""
            s.add(item)
        audit(
            s, "system", "voicemail.purge", target=f"{len(old)} files", older_than_days=days, files=old[:500]
        )
        s.commit()
    for name in old:
        (folder / name).unlink(missing_ok=True)
    log.info("voicemail purge: %d file(s) older than %s days deleted", len(old), days)
    return old


class VoicemailPurge:
    """The engine's periodic voicemail purge (first run at start)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: asyncio.Task | None = None

    async def run_once(self) -> list[str]:
        return await asyncio.to_thread(purge_voicemail, self.settings)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("voicemail purge failed")
            await asyncio.sleep(max(1.0, self.settings.voicemail_purge_interval_s))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="voicemail-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
