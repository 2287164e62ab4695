"""The hostile-input corpus through the FastAGI routes over real TCP: every route finishes without
an error and sets only clean values."""

from __future__ import annotations

import logging

import pytest

from callcenter.bus import InProcessBus
from hotline.engine import Engine
from tests.conftest import free_port
from tests.hostile import feed_agi


@pytest.fixture
async def engine(settings):
    settings.agi_port = free_port()
    settings.agi_read_timeout = 0.5
    e = Engine(settings, InProcessBus())
    await e.ivr.start()
    await e.start_agi()
    yield e
    await e.stop_agi()
    await e.ivr.stop()


async def test_the_corpus_through_every_route(engine, settings, caplog):
    caplog.set_level(logging.ERROR, logger="agi_scripts")
    outcome = await feed_agi(settings.agi_port)
    assert outcome.inputs > 200
    assert not outcome.failures, "\n".join(outcome.failures[:20])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[:10]
