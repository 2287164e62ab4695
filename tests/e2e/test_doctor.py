"""`callcenter doctor` against the running stack: every hop checked, figures as JSON last."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import env_for

pytestmark = pytest.mark.e2e


def test_doctor_passes_on_a_healthy_stack(app):
    def doctor():
        return subprocess.run(
            [sys.executable, "-m", "hotline.cli", "doctor"],
            env=env_for(app.settings),
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = doctor()  # adds the diagnostics number and reloads Asterisk, then calls it
    assert out.returncode == 0, out.stdout + out.stderr
    assert doctor().returncode == 0  # and again, with everything in place
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["doctor"] == "ok"
    for figure in (
        "db_ms",
        "ami_login_ms",
        "invite_to_route_ms",
        "route_to_agent_called_ms",
        "agent_called_to_pop_ms",
    ):
        assert report[figure] >= 0, report
    assert report["agent_called_to_pop_ms"] < 1000


def test_doctor_fails_when_the_engine_is_down(app):
    app.stop()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "hotline.cli", "doctor"],
            env=env_for(app.settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        app.start()
    assert out.returncode != 0
    assert json.loads(out.stdout.strip().splitlines()[-1])["doctor"] == "fail"
