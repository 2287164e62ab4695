"""The product's clock: every "now", every naive-to-aware fix and every China-time format.

Two clocks, on purpose:
- ``utcnow`` stamps what happened (rows, outbox retries, claims): always the real time, so retries
  and ordering keep working whatever the business clock says;
- ``china_now(settings)`` answers business questions (opening hours, today's date in China):
  the frozen ``settings.clock`` (``CALLCENTER_CLOCK``, an ISO date-time, China time when naive)
  when set, so a test or a drill can run the out-of-hours path at any time of day.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from typing import overload

from callcenter.config import CHINA_TZ, Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def aware(ts: datetime) -> datetime: ...
@overload
def aware(ts: None) -> None: ...
def aware(ts: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def china_now(settings: Settings | None = None) -> datetime:
    """China time now, or the frozen ``settings.clock``."""
    if settings is not None and settings.clock:
        fixed = datetime.fromisoformat(settings.clock)
        if fixed.tzinfo is None:
            fixed = fixed.replace(tzinfo=CHINA_TZ)
        return fixed.astimezone(CHINA_TZ)
    return datetime.now(CHINA_TZ)


def china_day(ts: datetime | None = None) -> str:
    """The date in China (ISO), of ``ts`` or of now."""
    return (ts or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ).date().isoformat()


def seconds_to_china_midnight(now: datetime | None = None) -> float:
    """Seconds from ``now`` (or now) to the next 00:00 in China."""
    local = (now or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), CHINA_TZ)
    return (midnight - local).total_seconds()


def local_minute(ts: datetime | None) -> str:
    """``2026-10-08 14:05`` in China time; empty for no time."""
    ts = aware(ts)
    return ts.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if ts else ""


def local_day(ts: datetime | None) -> str:
    """``2026-10-08`` in China time; empty for no time."""
    ts = aware(ts)
    return ts.astimezone(CHINA_TZ).strftime("%Y-%m-%d") if ts else ""


def iso_seconds(ts: datetime | None) -> str | None:
    """ISO 8601 to the second, UTC when stored naive; None for no time."""
    ts = aware(ts)
    return ts.isoformat(timespec="seconds") if ts else None


@functools.lru_cache(maxsize=4096)  # a call's times are written on each of its pops and states
def iso_epoch_ms(ts: float | None) -> str | None:
    """An epoch time (AMI, the live model) as ISO 8601 UTC to the millisecond; None for none."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None
