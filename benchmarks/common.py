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


# --- audio both ways, and what the recordings hold ------------------------------------------------

CALLER_TONE_HZ = 1000  # what a resident "says": a looped tone, so a recording shows who was heard
SEAT_TONE_HZ = 440


def looped_tone(path: Path, hz: float, seconds: float = 10) -> Path:
    """Raw 8 kHz G.711 µ-law of a tone, which sipp's ``rtp_stream`` plays in a loop for the whole
    call (payload type 0, 20 ms packets)."""
    from asterisk_conf.tones import tone_samples, ulaw_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ulaw_bytes(tone_samples(hz, seconds)))
    return path


def speaking_seat_phone(port: int, audio: Path, ring_ms: int):
    """Every seat's phone on one sipp (a :class:`~asterisk_conf.sipp_media.MediaUAS`), answering
    in PCMU (the seats' first codec: no transcoding) and speaking ``audio`` (raw µ-law, looped)
    from the answer to the hang-up, however long the call lasts (the speech pcap MediaUAS plays
    lasts about 7 s)."""
    from asterisk_conf.sipp_media import MediaUAS

    class SpeakingSeatPhone(MediaUAS):
        def render_scenario(self, workdir: Path) -> Path:
            out = super().render_scenario(workdir)
            text = out.read_text()
            replaced = (
                text.replace("RTP/AVP 8 101", "RTP/AVP 0 101")
                .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000")
                .replace(
                    '<recv request="ACK" rtd="true" crlf="true"/>\n',
                    '<recv request="ACK" rtd="true" crlf="true"/>\n'
                    f'  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>\n',
                )
            )
            if replaced.count("PCMU") != 1 or replaced.count("rtp_stream") != 1:
                raise RuntimeError("uas_media.xml changed: the seat phone's audio could not be set")
            out.write_text(replaced)
            return out

    return SpeakingSeatPhone(port, audio=False, ring_ms=ring_ms, talk_ms=0)


def two_way_share(path: Path) -> float | None:
    """Of a recording's non-silent 50 ms blocks, the share in which both the caller's tone and the
    seat's carry energy (each at least a tenth of the block's): about 1.0 when audio went both
    ways and was recorded, 0 when only one side was heard. None for a file that cannot be read."""
    from asterisk_conf.tones import goertzel_power, read_wav

    try:
        samples, rate = read_wav(path)
    except (OSError, EOFError, ValueError):
        return None
    block = rate // 20
    heard = both = 0
    for i in range(0, len(samples) - block + 1, block):
        b = samples[i : i + block]
        energy = sum(x * x for x in b) / len(b)
        if energy < 1000:  # silence (about -45 dBFS)
            continue
        heard += 1
        # A sine's Goertzel power (per n²) is A²/4, its mean power A²/2.
        caller = goertzel_power(b, rate, CALLER_TONE_HZ) * 2
        seat = goertzel_power(b, rate, SEAT_TONE_HZ) * 2
        if caller >= 0.1 * energy and seat >= 0.1 * energy:
            both += 1
    return both / heard if heard else 0.0


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 min load averages (it is shared: say what else ran)."""
    return [round(x, 2) for x in os.getloadavg()]


def add_seats(session, count: int, first_ext: int, label: str, queue: str) -> None:
    """``count`` seat accounts (extensions first_ext+1 …, display names ``label`` + number, the
    demo's password) in ``queue``."""
    from callcenter.accounts.models import Account, QueueMembership
    from callcenter.accounts.service import hash_password
    from hotline.demo import DEMO_PASSWORD

    pw = hash_password(DEMO_PASSWORD)
    for i in range(1, count + 1):
        ext = str(first_ext + i)
        acc = Account(
            username=f"seat{ext}",
            display_name=f"{label}{i:03d}",
            password_hash=pw,
            role="seat",
            must_change_password=False,
            extension=ext,
        )
        session.add(acc)
        session.flush()
        session.add(QueueMembership(account_id=acc.id, queue_name=queue, penalty=0))
    session.flush()


def ring_every_seat_at(session, port: int) -> list[str]:
    """Every seat's phone is the one sipp answering machine on ``port``; their extensions."""
    from sqlmodel import select

    from callcenter.accounts.models import Account

    exts = []
    for acc in session.exec(select(Account).where(Account.role == "seat")).all():
        if not acc.extension:
            continue
        acc.sip_contact = f"sip:seat{acc.extension}@127.0.0.1:{port}"
        acc.must_change_password = False
        session.add(acc)
        exts.append(acc.extension)
    return exts


def order_body(plan: dict, rng, n: int, resident: tuple[int, str], summary: str) -> dict:
    """A seat's order for ``resident`` (id, phone) as ``POST /api/orders`` takes it: help
    ("求助") in a random category and community of ``plan``, dispatched to a random outlet."""
    resident_id, phone = resident
    return {
        "order_type": "求助",
        "summary": summary,
        "category_id": rng.choice(plan["categories"]),
        "community_id": rng.choice(plan["communities"]),
        "resident_id": resident_id,
        "caller_phone": phone,
        "address": f"测试路{n}号",
        "outlet_id": rng.choice(plan["outlets"]),
    }
