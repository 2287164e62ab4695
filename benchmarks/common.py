"""What the benchmark scripts share: progress lines, percentiles, and the stack (Asterisk and the
app as in production) started around a measurement and always stopped after it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# Shifts every port a benchmark listens on, so a benchmark can run beside tests or helpers' stacks
# (the benchmark smoke test in `make test` sets it).
PORT_OFFSET = int(os.environ.get("BENCH_PORT_OFFSET", "0"))
# Where generated data sets and the benchmarks' stacks live (the smoke test gives its own folder)
CACHE_ROOT = Path(os.environ.get("BENCH_CACHE_DIR") or ROOT / "benchmarks" / ".cache")


def ports(**base: int) -> dict[str, int]:
    """The stack's ports (Settings' field names), shifted by BENCH_PORT_OFFSET."""
    return {name: port + PORT_OFFSET for name, port in base.items()}


def log(msg: str) -> None:
    """Progress goes to stderr; stdout carries only the result's JSON line."""
    print(f"# {msg}", file=sys.stderr, flush=True)


def dataset_dir(name: str, *sizes: object, code: tuple[str, ...] = ()) -> Path:
    """The cache folder of a generated data set, named by its sizes and a hash of the code that
    makes it (the benchmark's own file, the schema's migrations and ``code``, paths from the
    project's root): a change to any of them makes a new data set instead of reusing a stale one.
    Older data sets of the same name are removed (they are large)."""
    caller = Path(sys._getframe(1).f_code.co_filename).resolve()
    files = [caller, *sorted((ROOT / "migrations" / "versions").glob("*.py")), *(ROOT / c for c in code)]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    stem = "-".join([name, *(str(s) for s in sizes)])
    path = CACHE_ROOT / f"{stem}-{digest.hexdigest()[:12]}"
    for old in path.parent.glob(f"{stem}-*"):
        if old != path and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return path


def cpu_ms(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def missing_part(what: str) -> None:
    """A part a benchmark needs is not here: in CI (CI=true) that fails the run, elsewhere the
    figure is left out with a note."""
    if os.environ.get("CI", "").lower() == "true":
        log(f"FAILED: {what} (CI requires every part)")
        raise SystemExit(2)
    log(f"not measured: {what}")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def fresh_data_dir(settings, cache: Path, residents: int | None = None) -> None:
    """An empty data dir for a stack benchmark: the schema, secrets, and a short welcome (the
    calls' timing is the benchmark's, not the prompt's). With ``residents``, the database is a
    copy of the shared benchmark data set of that many residents (benchmarks/dataset.py)."""
    import json

    from asterisk_conf import process
    from callcenter.config import SECRET_KEYS
    from callcenter.database import migrate

    process.stop(settings)  # a previous run that died before its teardown
    shutil.rmtree(cache, ignore_errors=True)
    settings.data_dir.mkdir(parents=True)
    if residents is not None:
        from benchmarks import dataset

        dataset.install(settings, residents)
    migrate(settings)
    # Secrets the settings read from the removed folder would not be written again, and the app
    # (another process) would make new ones that Asterisk's config does not know: new ones here.
    for key in SECRET_KEYS:
        setattr(settings, key, "")
    settings.load_secrets()
    (settings.data_dir / "prompts.json").write_text(json.dumps({"welcome": "您好。"}, ensure_ascii=False))


def on_stack(settings, measure: Callable[..., Awaitable[dict]], *args) -> dict:
    """Start Asterisk and ``callcenter serve`` for ``settings``, run ``measure(app, *args)``, stop
    both whatever happens (a stack left running holds the benchmark's ports)."""
    from asterisk_conf import process
    from tests.e2e.conftest import App

    started = time.monotonic()
    app = App(settings)
    try:
        process.start(settings)
        log("Asterisk up")
        app.start()
        log("app up")
        return asyncio.run(measure(app, *args))
    finally:
        app.stop()
        process.stop(settings)
        log(f"stack ran {time.monotonic() - started:.1f} s")
