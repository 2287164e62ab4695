"""Fixtures for dispatch tests: the small world of ``dispatch.testing`` on a migrated database."""

from __future__ import annotations

import pytest

from callcenter.database import session_scope
from dispatch.testing import World, build_world


@pytest.fixture
def world(settings) -> World:
    with session_scope(settings) as s:
        return build_world(s)


@pytest.fixture
def db(settings):
    with session_scope(settings) as s:
        yield s
