"""Who acts on orders: an account (seat, supervisor, admin, outlet user) or the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callcenter.accounts.models import Role

SYSTEM = "system"  # the deadline scheduler's role

STAFF = frozenset({Role.SEAT.value, Role.SUPERVISOR.value, Role.ADMIN.value})
SUPERVISORS = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})
OUTLET = frozenset({Role.OUTLET.value})


@dataclass(frozen=True)
class Actor:
    """Who acts: an account (username, role, the outlet of an outlet user) or the scheduler."""

    username: str
    role: str
    outlet_id: int | None = None

    @classmethod
    def system(cls, username: str = "scheduler") -> Actor:
        return cls(username=username, role=SYSTEM)

    @classmethod
    def of(cls, account: Any) -> Actor:
        return cls(username=account.username, role=account.role, outlet_id=account.outlet_id)
