"""Basic data (基础数据): jurisdictions, communities, grids, service numbers, queues, outlets."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Jurisdiction(SQLModel, table=True):
    """A sub-district office (街道办事处)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    code: str = Field(default="", max_length=32)


class Community(SQLModel, table=True):
    """A community (社区) under a jurisdiction."""

    id: int | None = Field(default=None, primary_key=True)
    jurisdiction_id: int = Field(foreign_key="jurisdiction.id", index=True)
    name: str = Field(index=True, max_length=64)
    urban: bool = True
    demo: bool = False  # illustrative names from the demo data


class Grid(SQLModel, table=True):
    """A grid (网格) inside a community."""

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    name: str = Field(max_length=64)


class CallQueue(SQLModel, table=True):
    """An Asterisk queue (one skill)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=32, regex=r"^[a-z0-9_-]+$")
    title: str = Field(default="", max_length=64)
    strategy: str = Field(default="rrmemory", max_length=16)
    agent_timeout: int = 15  # seconds a seat's phone rings before the next one
    wrapup: int = 5
    service_level: int = 15


class ServiceNumber(SQLModel, table=True):
    """A called service number (服务号码, DID) and the queue it leads to."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=32, regex=r"^[0-9]+$")
    title: str = Field(default="", max_length=64)
    queue_name: str = Field(max_length=32)


class Outlet(SQLModel, table=True):
    """A service outlet (服务网点) or goods supplier."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    kind: str = Field(default="outlet", max_length=16)  # outlet | supplier
    community_id: int | None = Field(default=None, foreign_key="community.id")
    categories: str = Field(default="", max_length=255)
    phone: str = Field(default="", max_length=32)
    email: str = Field(default="", max_length=128)
    # More contacts, hours (migration 0006).
    # Further numbers that may reply by SMS for this outlet, E.164, comma-separated.
    phones: str = Field(default="", max_length=255)
    emails: str = Field(default="", max_length=255)  # further e-mail addresses, comma-separated
    working_hours: str = Field(default="", max_length=64)  # e.g. 周一至周五 08:30-17:30
    active: bool = True

    def sms_numbers(self) -> list[str]:
        """Every number registered to reply for this outlet (E.164)."""
        out = [self.phone] if self.phone else []
        out += [p.strip() for p in self.phones.split(",") if p.strip()]
        return out

    def mail_addresses(self) -> list[str]:
        out = [self.email] if self.email else []
        return out + [e.strip() for e in self.emails.split(",") if e.strip()]


# Outlet contacts, hours, the service areas it covers.
class OutletArea(SQLModel, table=True):
    """A service area (片区) an outlet or supplier covers."""

    __tablename__ = "outlet_area"

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="outlet.id", index=True)
    area_id: int = Field(foreign_key="service_area.id", index=True)


class ServiceArea(SQLModel, table=True):
    """A service area (服务片区): a group of communities one outlet or supplier covers."""

    __tablename__ = "service_area"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)


class ServiceAreaCommunity(SQLModel, table=True):
    __tablename__ = "service_area_community"

    id: int | None = Field(default=None, primary_key=True)
    area_id: int = Field(foreign_key="service_area.id", index=True)
    community_id: int = Field(foreign_key="community.id", index=True)
