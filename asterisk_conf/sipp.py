"""SIPp as residents and as seat phones (used by the doctor command, the tests and benchmarks).

* :class:`SippUAS` runs a seat's phone (``sipp/uas_answer.xml``) on a port: rings, answers and
  holds any number of calls until stopped. Use it as a (async) context manager.
* :func:`place_call` makes one resident call (``sipp/uac_call.xml``) to a DID and reports how it
  went; :func:`run_calls` makes many at a rate for benchmarks.

The scenarios are templates rendered at run time into a temporary folder; every value that comes
from outside (caller number, display name, header values) is passed to sipp with ``-key`` so it is
never parsed as scenario text, and only header *names* (checked tokens) are written into the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.config import Settings

SCENARIOS = Path(__file__).resolve().parent / "sipp"
_TOKEN = re.compile(r"[A-Za-z0-9!%*_+`'~.-]+")  # RFC 3261 token (header names)
_USER = re.compile(r"[A-Za-z0-9+*#._-]{1,64}")


def stop_group(proc: subprocess.Popen | None, timeout: float = 5) -> None:
    """End a tool started in a process group of its own (sipp, baresip): TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class SippMissing(RuntimeError):
    """The sipp binary (Debian package sip-tester) is not installed."""


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SippMissing("sipp is not installed: apt-get install sip-tester")
    return path


def _sip_target(settings: Settings) -> str:
    host = settings.sip_host
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    return f"{host}:{int(settings.sip_port)}"


def quote_display_name(name: str) -> str:
    """A SIP quoted-string for a display name (RFC 3261 25.1): ``\\`` and ``"`` escaped, one line."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in name)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header_value(value: str) -> str:
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in str(value)).strip()


def _udp_bound(ip: str, port: int) -> bool:
    """Whether something listens on ip:port/udp (from /proc/net/udp)."""
    want_port = f"{port:04X}"
    octets = ip.split(".")
    want_ip = "".join(f"{int(o):02X}" for o in reversed(octets)) if len(octets) == 4 else None
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        local = line.split()[1]
        lip, lport = local.split(":")
        if lport == want_port and (want_ip is None or lip in (want_ip, "00000000")):
            return True
    return False


def free_udp_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


# --- results -------------------------------------------------------------------------------------


@dataclass
class SippResult:
    returncode: int
    calls: int = 0
    successful: int = 0
    failed: int = 0
    duration: float = 0.0
    stats: dict[str, str] = field(default_factory=dict)
    errors: str = ""  # sipp's error log (unexpected messages)
    output: str = ""  # sipp's stderr
    messages: str = ""  # the SIP trace when trace=True

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.successful > 0


def _read_stats(path: Path) -> dict[str, str]:
    """The last row of a sipp -trace_stat CSV (``;``-separated) as a dict."""
    try:
        rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    except OSError:
        return {}
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return {h: v for h, v in zip(header, last, strict=False) if h}


def _int(stats: dict[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --- the resident (UAC) --------------------------------------------------------------------------


# Keys pressed by the caller
# SIP INFO (application/dtmf-relay): sipp 3.6's RFC 2833 pcaps all carry the same RTP timestamp,
# so Asterisk takes every key after the first for a repeat of it and drops it.
_INFO = """  <send>
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:@@CALLER@@@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: <sip:@@CALLER@@@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="300"/>"""
DTMF_KEYS = set("0123456789#*")


def dtmf_actions(steps: list[str | int] | None) -> tuple[str, int]:
    """Scenario lines for ``steps`` and the number of INFO requests: a key ("0"-"9", "#", "*") is
    sent as a SIP INFO and followed by 300 ms; an int pauses that many ms.
    E.g. ``[2500, "1"]``: wait, then press 1."""
    lines = []
    n = 0
    for step in steps or []:
        if isinstance(step, int):
            lines.append(f'  <pause milliseconds="{max(1, step)}"/>')
            continue
        if step not in DTMF_KEYS:
            raise ValueError(f"not a DTMF key: {step!r}")
        n += 1
        lines.append(_INFO.format(cseq=1 + n, key=step))
    return "\n".join(lines) + ("\n" if lines else ""), n


def render_uac(
    workdir: Path,
    *,
    caller_token: str,
    with_name: bool,
    header_names: list[str],
    hold_ms: int,
    dtmf: list[str | int] | None = None,
    audio: Path | None = None,
) -> Path:
    text = (SCENARIOS / "uac_call.xml").read_text()
    keys, n_info = dtmf_actions(dtmf)
    if audio is not None:
        # The caller speaks from the answer on: RTP from a pcap (PCMU, as offered), or raw 8 kHz
        # mu-law (payload 0) streamed in a loop.
        if not re.fullmatch(r"[A-Za-z0-9_./-]+", str(audio)):
            raise ValueError(f"audio path must be a plain path: {audio}")
        if str(audio).endswith(".pcap"):
            keys = f'  <nop><action><exec play_pcap_audio="{audio}"/></action></nop>\n' + keys
        else:
            keys = f'  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>\n' + keys
    text = text.replace("@@AFTER_ANSWER@@\n", keys)
    # In-dialog requests count up: the BYE comes after the INFOs.
    text = text.replace("CSeq: 2 BYE", f"CSeq: {2 + n_info} BYE")
    lines = []
    for i, name in enumerate(header_names):
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"bad SIP header name {name!r}")
        lines.append(f"      {name}: [cc_h{i}]")
    text = text.replace("@@FROM_NAME@@", "[cc_name] " if with_name else "")
    text = text.replace("@@CALLER@@", caller_token)
    # An empty line would end the headers: drop the placeholder line when there is nothing.
    text = text.replace("@@EXTRA_HEADERS@@\n", "\n".join(lines) + "\n" if lines else "")
    text = text.replace("@@HOLD_MS@@", str(max(1, int(hold_ms))))
    out = workdir / "uac_call.xml"
    out.write_text(text)
    return out


def _uac_command(
    settings: Settings,
    scenario: Path,
    workdir: Path,
    *,
    did: str,
    source_ip: str,
    keys: dict[str, str],
    calls: int,
    rate: float,
    limit: int | None,
    timeout: float,
    trace: bool,
    inf: Path | None = None,
) -> list[str]:
    cmd = [
        sipp_binary(),
        _sip_target(settings),
        "-sf",
        str(scenario),
        "-s",
        did,
        "-i",
        source_ip,
        "-bind_local",
        "-p",
        str(free_udp_port(source_ip)),
        "-mp",
        str(free_udp_port(source_ip)),
        "-m",
        str(calls),
        "-r",
        f"{rate:g}",
        "-nostdin",
        "-aa",
        "-timeout",
        f"{max(1, int(timeout))}s",
        "-timeout_error",
        "-max_retrans",
        "3",
        "-cid_str",
        "cc-%u-%p@%s",
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
        "-trace_stat",
        "-stf",
        str(workdir / "stats.csv"),
    ]
    if limit:
        cmd += ["-l", str(limit)]
    if inf is not None:
        cmd += ["-inf", str(inf)]
    if trace:
        cmd += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
    for k, v in keys.items():
        cmd += ["-key", k, v]
    return cmd


async def _run_sipp(cmd: list[str], workdir: Path, timeout: float, trace: bool) -> SippResult:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(workdir),
        start_new_session=True,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout + 15)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    stats = _read_stats(workdir / "stats.csv")
    successful = _int(stats, "SuccessfulCall(C)")
    failed = _int(stats, "FailedCall(C)")
    return SippResult(
        returncode=proc.returncode if proc.returncode is not None else -1,
        calls=_int(stats, "TotalCallCreated"),
        successful=successful,
        failed=failed,
        duration=time.monotonic() - started,
        stats=stats,
        errors=_read(workdir / "errors.log"),
        output=(err or b"").decode(errors="replace"),
        messages=_read(workdir / "messages.log") if trace else "",
    )


async def place_call(
    settings: Settings,
    did: str,
    caller: str,
    caller_name: str | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    hold_ms: int = 3000,
    timeout: float = 60,
    trace: bool = False,
    dtmf: list[str | int] | None = None,
    audio: Path | None = None,
) -> SippResult:
    """One resident call to ``did`` from ``caller`` (sourced from ``source_ip``; the 12345 trunk
    is 127.0.0.2). The caller stays ``hold_ms`` after the answer (waiting in the queue plus
    talking), then hangs up; a BYE from Asterisk first is fine too."""
    return await run_calls(
        settings,
        did,
        [caller],
        rate=1,
        caller_name=caller_name,
        headers=headers,
        source_ip=source_ip,
        hold_ms=hold_ms,
        timeout=timeout,
        trace=trace,
        dtmf=dtmf,
        audio=audio,
    )


async def run_calls(
    settings: Settings,
    did: str,
    callers: list[str],
    rate: float = 1.0,
    limit: int | None = None,
    caller_name: str | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    hold_ms: int = 3000,
    timeout: float = 300,
    trace: bool = False,
    dtmf: list[str | int] | None = None,
    audio: Path | None = None,
) -> SippResult:
    """``len(callers)`` calls to ``did`` at ``rate`` calls/s (at most ``limit`` at once), one per
    caller number (sipp ``-inf``), each held ``hold_ms`` after the answer. For benchmarks."""
    if not callers:
        raise ValueError("no callers")
    if not _USER.fullmatch(did) or not all(_USER.fullmatch(c) for c in callers):
        raise ValueError("did and callers must be SIP user tokens")
    headers = headers or {}
    with tempfile.TemporaryDirectory(prefix="cc-sipp-bulk-") as tmp:
        workdir = Path(tmp)
        inf = workdir / "callers.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
        names = list(headers)
        scenario = render_uac(
            workdir,
            caller_token="[field0]",
            with_name=caller_name is not None,
            header_names=names,
            hold_ms=hold_ms,
            dtmf=dtmf,
            audio=audio,
        )
        keys: dict[str, str] = {}
        if caller_name is not None:
            keys["cc_name"] = quote_display_name(caller_name)
        for i, name in enumerate(names):
            keys[f"cc_h{i}"] = _header_value(headers[name])
        cmd = _uac_command(
            settings,
            scenario,
            workdir,
            did=did,
            source_ip=source_ip,
            keys=keys,
            calls=len(callers),
            rate=rate,
            # sipp's own default caps calls at once at 3 × rate: long calls would be held back.
            limit=limit or len(callers),
            timeout=timeout,
            trace=trace,
            inf=inf,
        )
        return await _run_sipp(cmd, workdir, timeout, trace)


# --- the seat phone (UAS) ------------------------------------------------------------------------

_RING_WAIT = '  <recv request="CANCEL" timeout="{ms}" ontimeout="answer" next="cancelled"/>'
_RING_NEVER = '  <recv request="CANCEL" next="cancelled"/>'
_REJECT = """  <send>
    <![CDATA[

      SIP/2.0 {code} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" crlf="true" next="done"/>"""
_TALK_WAIT = '  <recv request="BYE"/>'
_TALK_TIMED = '  <recv request="BYE" timeout="{ms}" ontimeout="hangup"/>'
_REASONS = {486: "Busy Here", 480: "Temporarily Unavailable", 603: "Decline", 404: "Not Found"}


async def register_phone(
    settings: Settings,
    user: str,
    password: str,
    port: int,
    expires: int = 3600,
    ip: str = "127.0.0.1",
    hold_ms: int = 1500,
    timeout: float = 15,
) -> SippResult:
    """Register a desk phone's contact ``ip:port`` for the endpoint ``user`` (digest auth), or
    with ``expires=0`` remove every contact of it (``Contact: *``; any port). Start a SippUAS on
    the same port afterwards to answer its calls (Asterisk rewrites the contact to the port the
    REGISTER came from)."""
    with tempfile.TemporaryDirectory(prefix="cc-sipp-reg-") as tmp:
        workdir = Path(tmp)
        contact = "*" if expires == 0 else f"<sip:{user}@{ip}:{port}>"
        text = (SCENARIOS / "uac_register.xml").read_text()
        text = text.replace("@@CONTACT@@", contact).replace("@@EXPIRES@@", str(int(expires)))
        scenario = workdir / "uac_register.xml"
        scenario.write_text(text.replace("@@HOLD_MS@@", str(max(1, int(hold_ms)))))
        cmd = [
            sipp_binary(),
            _sip_target(settings),
            "-sf",
            str(scenario),
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
            "-i",
            ip,
            "-bind_local",
            "-p",
            str(port if expires else free_udp_port(ip)),
            "-mp",
            str(free_udp_port(ip)),
            "-m",
            "1",
            "-nostdin",
            "-aa",
            "-timeout",
            f"{max(1, int(timeout))}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(workdir / "errors.log"),
            "-trace_stat",
            "-stf",
            str(workdir / "stats.csv"),
        ]
        return await _run_sipp(cmd, workdir, timeout, trace=False)


def render_uas(workdir: Path, *, ring_ms: int | None, talk_ms: int | None, reject_code: int | None) -> Path:
    text = (SCENARIOS / "uas_answer.xml").read_text()
    if reject_code is not None:
        ring = _REJECT.format(code=int(reject_code), reason=_REASONS.get(int(reject_code), "Rejected"))
    elif ring_ms is None:
        ring = _RING_NEVER
    elif ring_ms > 0:
        ring = _RING_WAIT.format(ms=int(ring_ms))
    else:
        ring = ""
    talk = _TALK_TIMED.format(ms=int(talk_ms)) if talk_ms else _TALK_WAIT
    text = text.replace("@@RING@@", ring).replace("@@TALK@@", talk)
    out = workdir / "uas_answer.xml"
    out.write_text(text)
    return out


class SippUAS:
    """A seat phone on ``ip:port`` answering every call, until stopped.

    ``ring_ms``: ring this long before answering (None: never answer, the queue gives up);
    ``talk_ms``: hang up after this long (None: wait for the caller/Asterisk to hang up);
    ``reject_code``: answer every INVITE with this failure (e.g. 486) instead.

    ::

        with SippUAS(port=15081) as phone:      # or: async with SippUAS(...)
            ...
            phone.stats()["SuccessfulCall(C)"]
    """

    def __init__(
        self,
        port: int,
        ip: str = "127.0.0.1",
        ring_ms: int | None = 500,
        talk_ms: int | None = None,
        reject_code: int | None = None,
        trace: bool = False,
    ) -> None:
        self.ip = ip
        self.port = port
        self.ring_ms = ring_ms
        self.talk_ms = talk_ms
        self.reject_code = reject_code
        self.trace = trace
        self.proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.workdir: Path | None = None
        self.final_stats: dict[str, str] = {}
        self.final_errors = ""

    @property
    def contact(self) -> str:
        return f"sip:phone@{self.ip}:{self.port}"

    def start(self, timeout: float = 5) -> SippUAS:
        if self.proc is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix=f"cc-sipp-uas-{self.port}-")
        self.workdir = Path(self._tmp.name)
        scenario = self.render_scenario(self.workdir)
        cmd = [
            sipp_binary(),
            "-sf",
            str(scenario),
            "-i",
            self.ip,
            "-bind_local",
            "-p",
            str(self.port),
            "-mp",
            str(free_udp_port(self.ip)),
            "-nostdin",
            "-aa",
            "-trace_err",
            "-error_file",
            str(self.workdir / "errors.log"),
            "-trace_stat",
            "-stf",
            str(self.workdir / "stats.csv"),
            "-fd",
            "1",
        ]
        if self.trace:
            cmd += ["-trace_msg", "-message_file", str(self.workdir / "messages.log")]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "stderr.log", "wb"),  # noqa: SIM115 - closed by the child's exit
            cwd=str(self.workdir),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not _udp_bound(self.ip, self.port):
            if self.proc.poll() is not None:
                err = _read(self.workdir / "stderr.log")
                self._cleanup()
                raise RuntimeError(f"sipp UAS on {self.ip}:{self.port} exited: {err.strip()[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sipp UAS did not bind {self.ip}:{self.port}")
            time.sleep(0.05)
        return self

    def render_scenario(self, workdir: Path) -> Path:
        """The scenario file this phone runs (a subclass may run another)."""
        return render_uas(workdir, ring_ms=self.ring_ms, talk_ms=self.talk_ms, reject_code=self.reject_code)

    def stats(self) -> dict[str, str]:
        """sipp's statistics (refreshed every second; kept after stop in ``final_stats``)."""
        return _read_stats(self.workdir / "stats.csv") if self.workdir else self.final_stats

    def errors(self) -> str:
        return _read(self.workdir / "errors.log") if self.workdir else self.final_errors

    def messages(self) -> str:
        return _read(self.workdir / "messages.log") if self.workdir else ""

    def stop(self, timeout: float = 5) -> None:
        proc, self.proc = self.proc, None
        stop_group(proc, timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.workdir is not None:
            self.final_stats = _read_stats(self.workdir / "stats.csv") or self.final_stats
            self.final_errors = _read(self.workdir / "errors.log")
        if self._tmp is not None and not self.trace:
            self._tmp.cleanup()
            self._tmp = None
            self.workdir = None

    def __enter__(self) -> SippUAS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aenter__(self) -> SippUAS:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc) -> None:
        await asyncio.to_thread(self.stop)
