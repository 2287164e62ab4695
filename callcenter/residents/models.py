"""Resident records (居民信息) and the elderly profile."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Resident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    # E.164 forms; the screen pop finds the resident by these.
    phone: str = Field(default="", index=True, max_length=20)
    phone2: str = Field(default="", index=True, max_length=20)
    id_number: str = Field(default="", max_length=18)  # shown masked
    address: str = Field(default="", max_length=255)
    community_id: int | None = Field(default=None, foreign_key="community.id", index=True)
    grid_id: int | None = Field(default=None, foreign_key="grid.id")
    birth_year: int | None = None
    elderly: bool = False
    lives_alone: bool = False
    vulnerable: bool = False
    emergency_contact: str = Field(default="", max_length=64)
    demo: bool = False
