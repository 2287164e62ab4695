"""Voicemail retention: old voicemails are deleted by the engine's periodic purge, their items
forget the file, and the purge is audited."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.ivr.models import CallerRequest
from callcenter.ivr.voicemail import VoicemailPurge, purge_voicemail, voicemail_dir


async def test_old_voicemail_is_purged_and_audited(settings):
    settings.voicemail_retention_days = 30
    folder = voicemail_dir(settings)
    folder.mkdir(parents=True)
    old, new = folder / "1000.1.wav", folder / "2000.2.wav"
    for path in (old, new):
        path.write_bytes(b"RIFF")
    (folder / "notes.txt").write_text("not a voicemail")
    long_ago = time.time() - 31 * 86400
    os.utime(old, (long_ago, long_ago))
    with session_scope(settings) as s:
        for name in ("1000.1.wav", "2000.2.wav"):
            s.add(
                CallerRequest(
                    kind="voicemail", caller="+8613919310001", recording=name, created_at=datetime.now(UTC)
                )
            )
        s.commit()
    purge = VoicemailPurge(settings)
    assert await purge.run_once() == ["1000.1.wav"]
    assert not old.exists() and new.exists() and (folder / "notes.txt").exists()
    with session_scope(settings) as s:
        assert sorted(r.recording for r in s.exec(select(CallerRequest)).all()) == ["", "2000.2.wav"]
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "voicemail.purge")).one()
        assert entry.detail["files"] == ["1000.1.wav"]
    assert purge_voicemail(settings) == []
    # The engine's component runs it at start, and stops cleanly.
    os.utime(new, (long_ago, long_ago))
    await purge.start()
    deadline = time.monotonic() + 5
    while new.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await purge.stop()
    assert not new.exists()
