"""Bad input at the edges, measured: the JSON API fuzzed by schemathesis as every role, and the
hostile-input corpus (tests/data/hostile/) fed to the FastAGI routes, the SMS webhooks, Open311
and the API. The web app runs in its own uvicorn process, as in production (SQLite).

BENCH_FUZZ_EXAMPLES (default 10) sets schemathesis' examples per operation and phase,
BENCH_FUZZ_PHASES (default "examples,coverage,fuzzing") its phases; the coverage phase sends most
of the requests whatever the examples (the smoke test leaves it out). Prints
one JSON line:
{"bench": "security", "fuzz_requests", "fuzz_server_errors", "fuzz_by_role", "fuzz_s",
"hostile_inputs", "hostile_failures", "hostile_s", "oversize_refused", "oversize_tried",
"dialout_refused_ok", "dialout_forbidden", "dialout_allowed"}: the dial-out policy over the corpus
tests/data/hostile/dialout.json (1 when every forbidden number is refused and every valid one
allowed; the e2e test tests/e2e/test_dialout.py dials them through Asterisk).
A server error or a hostile failure is listed on stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import log  # noqa: E402
from callcenter.accounts.service import hash_password  # noqa: E402
from callcenter.bus import InProcessBus  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import migrate, session_scope  # noqa: E402
from callcenter.dialout import policy  # noqa: E402
from dispatch.models import Category  # noqa: E402
from hotline.engine import Engine  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.hostile import Outcome, feed_agi, feed_web  # noqa: E402
from tests.web_console.conftest import (  # noqa: E402
    ACCOUNTS,
    FUZZ_ROLES,
    add_accounts,
    password_of,
    run_fuzz,
    serve_process,
    stream_chunked,
)

EXAMPLES = int(os.environ.get("BENCH_FUZZ_EXAMPLES", "10"))
PHASES = os.environ.get("BENCH_FUZZ_PHASES", "examples,coverage,fuzzing")
OVERSIZE = 50 * 1024 * 1024
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def oversize(served) -> tuple[int, int]:
    """50 MiB chunked bodies to a public form, a JSON API route, an upload and both SMS webhooks."""
    seat = served.role_headers("seat1001")
    multipart = {"Content-Type": "multipart/form-data; boundary=xyz"}
    cases = (
        ("/login", FORM),
        ("/api/orders", {"Content-Type": "application/json", **seat}),
        ("/orders/1/attachments", {**multipart, **seat}),
        ("/sms/twilio/inbound", {**FORM, "X-Twilio-Signature": "s"}),
        (f"/sms/aliyun/inbound?token={served.aliyun_token}", {"Content-Type": "application/json"}),
    )
    refused = 0
    for path, headers in cases:
        status, _sent, _ = stream_chunked(served.port, path, headers, total=OVERSIZE)
        refused += status == 413
    return refused, len(cases)


def dialout_corpus(settings: Settings) -> dict[str, int]:
    corpus = json.loads((ROOT / "tests" / "data" / "hostile" / "dialout.json").read_text(encoding="utf-8"))
    wrong = [n for n in corpus["forbidden"] if policy.check(n, settings).allowed]
    wrong += [n for n in corpus["allowed"] if not policy.check(n, settings).allowed]
    for number in wrong:
        log(f"dial-out policy wrong for {number[:40]!r}")
    return {
        "dialout_refused_ok": int(not wrong),
        "dialout_forbidden": len(corpus["forbidden"]),
        "dialout_allowed": len(corpus["allowed"]),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-security-"))
    settings = set_settings(
        Settings(data_dir=work / "var", session_secret="bench-session-secret-" + "x" * 24, _env_file=None)
    )
    migrate(settings)
    add_accounts(settings, {name: hash_password(password_of(name)) for name in ACCOUNTS})
    with session_scope(settings) as s:
        s.add(Category(code="001", name="路面塌陷"))
        s.commit()

    result: dict = {"bench": "security"}
    with serve_process(settings, work / "served") as served:
        supervisor, _ = served.login("super")
        schema = work / "openapi.json"
        schema.write_bytes(supervisor.get("/api/openapi.json").content)
        started = time.monotonic()
        by_role, errors = {}, []
        for role, username in FUZZ_ROLES.items():
            headers = served.role_headers(username)
            (work / role).mkdir()
            run = run_fuzz(
                served.base_url, schema, headers, work / role, max_examples=EXAMPLES, phases=PHASES
            )
            by_role[role] = run.requests
            errors += [f"{role}: {e}" for e in run.server_errors]
            log(f"fuzz as {role}: {run.requests} requests, {len(run.server_errors)} server errors")
        result.update(
            fuzz_requests=sum(by_role.values()),
            fuzz_server_errors=len(errors),
            fuzz_by_role=by_role,
            fuzz_s=round(time.monotonic() - started, 1),
        )
        started = time.monotonic()
        web = feed_web(served.web_target())
        log(f"hostile web: {web.inputs} inputs, {len(web.failures)} failures")
        refused, tried = oversize(served)

    async def agi() -> Outcome:
        settings.agi_port = free_port()
        engine = Engine(settings, InProcessBus())
        await engine.ivr.start()
        await engine.start_agi()
        try:
            return await feed_agi(settings.agi_port)
        finally:
            await engine.stop_agi()
            await engine.ivr.stop()

    hostile = web.add(asyncio.run(agi()))
    result.update(
        hostile_inputs=hostile.inputs,
        hostile_failures=len(hostile.failures),
        hostile_s=round(time.monotonic() - started, 1),
        oversize_refused=refused,
        oversize_tried=tried,
        **dialout_corpus(settings),
    )
    for line in errors + hostile.failures:
        log(line)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
