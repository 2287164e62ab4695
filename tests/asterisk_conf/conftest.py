"""Fixtures for the asterisk_conf tests: settings on a temporary data dir with a SQLite database
whose tables come from the models (no migrations needed), and a few rows to render."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import SQLModel

from asterisk_conf.installer import AsteriskInstall
from callcenter import config
from callcenter.config import Settings, set_settings
from callcenter.database import get_engine, session_scope
from hotline.models import import_all_models

MODULES = Path("/usr/lib/x86_64-linux-gnu/asterisk/modules")


def make_settings(data_dir: Path, **overrides) -> Settings:
    values = {"data_dir": data_dir, "ami_secret": "secret-from-settings-42", "_env_file": None}
    values.update(overrides)
    settings = set_settings(Settings(**values))
    import_all_models()
    SQLModel.metadata.create_all(get_engine(settings))
    return settings


def add_rows(
    settings: Settings,
    seats: list[dict] | None = None,
    queues: list[dict] | None = None,
    dids: list[dict] | None = None,
) -> None:
    from callcenter.accounts.models import Account, QueueMembership
    from callcenter.directory.models import CallQueue, ServiceNumber

    with session_scope(settings) as s:
        for q in queues or [{"name": "hotline", "title": "社区热线", "agent_timeout": 10}]:
            s.add(CallQueue(**q))
        for d in dids or [{"number": "96345", "queue_name": "hotline"}]:
            s.add(ServiceNumber(**d))
        for seat in seats or []:
            queue_names = seat.pop("queues", ["hotline"])
            sip_password = seat.pop("sip_password", "")
            a = Account(password_hash="x", role=seat.pop("role", "seat"), **seat)
            if sip_password:
                a.set_sip_password(sip_password, settings.sip_realm)
            s.add(a)
            s.commit()
            s.refresh(a)
            for qn in queue_names:
                s.add(QueueMembership(account_id=a.id, queue_name=qn))
        s.commit()


@pytest.fixture(autouse=True)
def _restore_settings():
    saved = config._Holder.settings
    yield
    config._Holder.settings = saved


@pytest.fixture
def fake_chroot_install(tmp_path) -> AsteriskInstall:
    root = tmp_path / "sid-root"
    for d in ("usr/share/asterisk/sounds/en", "usr/share/asterisk/sounds/zh", "usr/share/asterisk/firmware"):
        (root / d).mkdir(parents=True)
    return AsteriskInstall(
        mode="chroot",
        root=root,
        binary=Path("/usr/sbin/asterisk"),
        modules_dir=MODULES,
        data_dir=Path("/usr/share/asterisk"),
    )
