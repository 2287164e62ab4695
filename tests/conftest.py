"""Shared fixtures: settings on a temporary data dir with a migrated SQLite database."""

from __future__ import annotations

import os
import shutil

import pytest

from callcenter.config import Settings, set_settings
from callcenter.database import migrate

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_part(reason: str) -> None:
    """A real part (Asterisk, sipp, Redis, Chromium) is missing: a failure in CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(f"{reason} (not CI)")


def require(binary: str) -> str:
    """The path of a program the test needs (see ``missing_part``)."""
    path = shutil.which(binary)
    if path is None:
        missing_part(f"{binary} is not installed")
    return path


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = set_settings(Settings(data_dir=tmp_path / "var", _env_file=None))
    migrate(s)
    return s
