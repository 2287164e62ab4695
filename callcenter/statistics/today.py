"""Today's queue figures for the wallboard: the statistics' own definitions and roll-ups.

The wallboard shows exactly what today's report shows: both read the roll-ups that the
queue_log follower writes (``callcenter.statistics``), through ``definitions.figures``. The
definitions are in ``callcenter/statistics/definitions.py`` and docs/statistics.md. The day is
China Standard Time's. The call workers are handed ``DayStats.load`` by the engine (the calls
package sits below the statistics, which read its records).
"""

from __future__ import annotations

from callcenter.calls.state import DayFigures
from callcenter.clock import china_day
from callcenter.config import Settings
from callcenter.statistics.service import day_figures


class DayStats(DayFigures):
    @classmethod
    def load(cls, settings: Settings, day: str | None = None) -> DayStats:
        """The day's figures from the roll-ups (so a restart changes nothing)."""
        day = day or china_day()
        queues, seats = day_figures(settings, day)
        for q in queues.values():
            q.pop("key", None)
            q.pop("name", None)  # the page names the queue (its ids stay in the messages)
        return cls(day=day, queues=queues, seat_calls=seats)
