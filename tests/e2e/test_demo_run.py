"""`callcenter demo` as a new user starts it: left running, its log repeats no warning; its own
mail server receives every notice and the messages page shows them; every demo order's page
shows a history that leads to the order's status, its place and (once dispatched) its outlet and
deadline.

The demo runs its own Asterisk, console and phones on ports of its own (not the defaults, so a
running `make demo` is not disturbed). It is left alone for 90 s from its start, long enough for
a warning repeated every few seconds to show twice (CC_DEMO_QUIET_WINDOW_S: shorter for a quick
local run).
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from hotline.demo import DEMO_PASSWORD
from tests.conftest import require

pytestmark = pytest.mark.e2e

_OFF = int(os.environ.get("CC_TEST_PORT_OFFSET", "0"))
PORTS = {
    "ami_port": 31038 + _OFF,
    "sip_port": 31060 + _OFF,
    "agi_port": 30573 + _OFF,
    "web_port": 31080 + _OFF,
    "rtp_start": 20500 + _OFF,
    "rtp_end": 20599 + _OFF,
    "doctor_sip_port": 31099 + _OFF,
    "asterisk_http_port": 31088 + _OFF,
    "demo_smtp_port": 31025 + _OFF,
}
QUIET_WINDOW_S = float(os.environ.get("CC_DEMO_QUIET_WINDOW_S", "90"))
LEVEL = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")


def repeated_warnings(log: str) -> dict[str, int]:
    """Warnings and errors that came more than once (numbers, ids and times made alike)."""
    seen: Counter[str] = Counter()
    for line in log.splitlines():
        m = LEVEL.match(line)
        if m:
            seen[re.sub(r"\d+", "#", f"{m.group(1)} {m.group(2)}: {m.group(3)}")] += 1
    return {k: n for k, n in seen.items() if n > 1}


def test_repeated_warnings_are_found():
    log = "\n".join(
        [
            "2026-12-05 08:44:11,002 WARNING callcenter.mail: mail: SMTP 127.0.0.1:25: refused; 5 wait",
            "2026-12-05 08:44:12,043 WARNING callcenter.mail: mail: SMTP 127.0.0.1:25: refused; 4 wait",
            "2026-12-05 08:44:12,043 INFO sms.service: SMS 1 sent",
            "2026-12-05 08:44:12,043 INFO sms.service: SMS 2 sent",
            "2026-12-05 08:44:13,000 ERROR hotline.engine: once",
        ]
    )
    assert repeated_warnings(log) == {"WARNING callcenter.mail: mail: SMTP #.#.#.#:#: refused; # wait": 2}


def _field(page: str, element_id: str) -> str:
    """The text of the order page's element ``element_id`` (tags dropped)."""
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</dd>', page, re.S)
    assert m, element_id
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()


def _login(client: httpx.Client, username: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf": csrf})
    assert r.status_code in (302, 303), r.text


def test_the_demo_is_quiet_and_complete(tmp_path: Path):
    require("sipp")
    require("espeak-ng")
    env = dict(os.environ)
    env.update({f"CALLCENTER_{k.upper()}": str(v) for k, v in PORTS.items()})
    env["CALLCENTER_DATA_DIR"] = str(tmp_path / "var")
    env["CALLCENTER_PRODUCTION"] = "false"  # the demo's logins keep the demo password
    for key in (
        "CALLCENTER_DATABASE_URL",
        "CALLCENTER_REDIS_URL",
        "CALLCENTER_SMTP_HOST",
        "CALLCENTER_SMTP_PORT",
    ):
        env.pop(key, None)
    log_path = tmp_path / "demo.log"
    base = f"http://127.0.0.1:{PORTS['web_port']}"
    with open(log_path, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "demo", "--residents", "200"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    try:
        deadline = time.time() + 180
        while True:
            assert demo.poll() is None, "the demo exited:\n" + log_path.read_text()[-3000:]
            try:
                if httpx.get(base + "/healthz", timeout=1).json().get("engine", {}).get("ami") is True:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.time() < deadline, "the demo did not start:\n" + log_path.read_text()[-3000:]
            time.sleep(0.5)
        started = time.time()

        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            _login(client, "admin")
            # Every order page: a history that starts at 受理 and leads, step by step, to the status.
            listing = client.get("/orders").text
            ids = sorted({int(i) for i in re.findall(r'href="/orders/(\d+)"', listing)})
            assert len(ids) >= 10, listing[:2000]
            for order_id in ids:
                page = client.get(f"/orders/{order_id}").text
                status = re.search(r'id="order-status" data-status="([^"]+)"', page).group(1)
                table = page.split('id="order-history"', 1)[1].split("</table>", 1)[0]
                steps = [
                    (html.unescape(a).strip(), html.unescape(b).strip())
                    for a, b in re.findall(r"<td>([^<>]*) → ([^<>]*)</td>", table)
                ]
                assert steps, f"/orders/{order_id} ({status}) has no history"
                assert steps[0][0] == "", (order_id, steps)  # taken: from nothing
                for (_, to), (nxt, _) in zip(steps, steps[1:], strict=False):
                    assert nxt == to, (order_id, steps)
                assert steps[-1][1] == status, (order_id, status, steps)
                # Where, and (once dispatched) by whom and by when.
                assert _field(page, "order-place"), (order_id, "no place")
                if status not in ("受理", "已归档") or order_id == 1:
                    assert _field(page, "order-outlet"), (order_id, status, "no outlet")
                    assert _field(page, "order-deadline"), (order_id, status, "no deadline")

            # Left alone for a while: the notices are delivered to the demo's mail server ...
            while time.time() - started < QUIET_WINDOW_S:
                time.sleep(1)
            page = client.get("/admin/messages").text
            received = page.split('id="mail-received"', 1)[1].split("</table>", 1)[0]
            sent = page.split('id="mail-outbox"', 1)[1].split("</table>", 1)[0]
            mails = received.count("<details>")  # one per e-mail received
            assert mails >= 1, received
            assert 'data-status="queued"' not in sent and 'data-status="failed"' not in sent, sent
            assert sent.count('data-status="sent"') == mails, (sent, received)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
    log = log_path.read_text()
    # ... and the log says what a new user needs, and no warning twice.
    assert "demo is running" in log and base + "/" in log and DEMO_PASSWORD in log
    assert repeated_warnings(log) == {}, log[-5000:]
    assert "Traceback" not in log, log[-5000:]
