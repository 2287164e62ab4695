"""Shared fixtures: settings on a temporary data dir with a migrated SQLite database."""

from __future__ import annotations

import os
import shutil

import pytest

from callcenter.config import Settings, set_settings
from callcenter.database import migrate

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(binary: str) -> str:
    """A real part the test needs: in CI its absence fails the run, elsewhere it skips."""
    path = shutil.which(binary)
    if path is None:
        if IN_CI:
            pytest.fail(f"{binary} is required in CI but is not installed")
        pytest.skip(f"{binary} not installed (not CI)")
    return path


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = set_settings(Settings(data_dir=tmp_path / "var", _env_file=None))
    migrate(s)
    return s
