"""Resident records (居民信息) and the elderly profile."""

from __future__ import annotations

from datetime import datetime

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


# Household, elderly profile, service archive
class HouseholdMember(SQLModel, table=True):
    """Someone living with the resident (户内成员)."""

    __tablename__ = "household_member"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    name: str = Field(max_length=64)
    relation: str = Field(default="", max_length=16)  # 配偶 / 子女 / ...
    phone: str = Field(default="", max_length=20)
    birth_year: int | None = None


class ElderlyProfile(SQLModel, table=True):
    """The elderly profile (老年人档案); living alone and vulnerability stay on ``Resident``."""

    __tablename__ = "elderly_profile"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", unique=True, index=True)
    health_notes: str = Field(default="", max_length=500)
    emergency_phone: str = Field(default="", max_length=20)
    caregiver: str = Field(default="", max_length=64)
    caregiver_phone: str = Field(default="", max_length=20)


class ServiceArchive(SQLModel, table=True):
    """One service delivered to a resident (服务档案), written when an order is resolved."""

    __tablename__ = "service_archive"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="workorder.id", unique=True, index=True)
    service: str = Field(max_length=128)  # what: the category and the order's type
    outlet_id: int | None = Field(default=None, foreign_key="outlet.id")
    outlet_name: str = Field(default="", max_length=128)
    delivered_at: datetime
    outcome: str = Field(default="", max_length=1000)
