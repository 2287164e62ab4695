"""Reads of the directory that other domains need."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select

from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue


@dataclass(frozen=True, slots=True)
class QueueParams:
    wrapup_s: int
    service_level_s: int


def queue_params(settings: Settings) -> dict[str, QueueParams]:
    """Each queue's wrap-up time and service-level threshold, as rendered into queues.conf."""
    with session_scope(settings) as s:
        return {
            q.name: QueueParams(wrapup_s=q.wrapup, service_level_s=q.service_level)
            for q in s.exec(select(CallQueue))
        }
