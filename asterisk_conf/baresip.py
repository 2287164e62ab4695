"""A real softphone for tests and checks: Debian's ``baresip`` registered as a seat's desk phone.

It registers with the SIP account the administrator's page showed (server, port, transport,
username, password), answers every call by itself (``answermode=auto``; or lets it ring:
``manual``), and sends a WAV file as
its microphone (the ``aufile`` module: 8 kHz, mono, 16-bit, for G.711). What it hears is not
played anywhere (the ``aubridge`` player). Run it with a context manager::

    with Baresip(account, audio=Path("tone.wav"), port=free_sip_port()) as phone:
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.sipp import stop_group

MODULES = Path("/usr/lib/baresip/modules")


class BaresipMissing(RuntimeError):
    pass


def free_sip_port(ip: str = "127.0.0.1", tries: int = 50) -> int:
    """A port baresip can listen on: it binds UDP and TCP on ``sip_listen`` and TLS on the next
    port, so a port free only for UDP may already be some TCP connection's and fail to register."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((ip, 0))
            port = int(u.getsockname()[1])
            if port >= 65535:
                continue
            held: list[socket.socket] = []
            try:
                for p, kind in (
                    (port, socket.SOCK_STREAM),
                    (port + 1, socket.SOCK_STREAM),
                    (port + 1, socket.SOCK_DGRAM),
                ):
                    s = socket.socket(socket.AF_INET, kind)
                    held.append(s)
                    s.bind((ip, p))
            except OSError:
                continue
            finally:
                for s in held:
                    s.close()
            return port
    raise OSError("no free port for a SIP phone")


def baresip_binary() -> str:
    path = shutil.which("baresip")
    if path is None:
        raise BaresipMissing("baresip is not installed (scripts/install-deps.sh installs baresip-core)")
    return path


@dataclass(frozen=True)
class SipAccount:
    """What a phone is told to use: as the administrator's page shows it."""

    server: str
    port: int
    transport: str  # udp | tcp | tls
    username: str
    password: str
    # auto: answers every call at once; manual: rings until the call is answered elsewhere or ends
    answermode: str = "auto"

    def uri(self) -> str:
        if self.transport not in ("udp", "tcp", "tls"):
            raise ValueError(f"unknown transport {self.transport!r}")
        if self.answermode not in ("auto", "manual"):
            raise ValueError(f"unknown answer mode {self.answermode!r}")
        for value in (self.server, self.username, self.password):
            if not value or any(c in value for c in '<>;\n\r "'):
                raise ValueError("server, username and password must be plain tokens")
        return (
            f"<sip:{self.username}@{self.server}:{int(self.port)};transport={self.transport}>"
            f";auth_pass={self.password};answermode={self.answermode};audio_codecs=PCMU,PCMA;regint=600"
        )


class Baresip:
    """One baresip process with its own config folder; ``port``: the local SIP port it binds."""

    def __init__(self, account: SipAccount, audio: Path, port: int, ca_file: Path | None = None) -> None:
        self.account = account
        self.audio = audio
        self.port = port
        self.ca_file = ca_file
        self.proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.log_text = ""

    def _config(self) -> str:
        lines = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{int(self.port)}",
            f"audio_source aufile,{self.audio}",
            "audio_player aubridge,nowhere",
            "audio_alert aubridge,nowhere",
            "audio_level no",
            "rtp_stats no",
            f"module_path {MODULES}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module_app account.so",
            "module_app menu.so",
        ]
        if self.ca_file is not None:
            lines.append(f"sip_cafile {self.ca_file}")
        return "\n".join(lines) + "\n"

    def start(self) -> Baresip:
        if self.proc is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="cc-baresip-")
        folder = Path(self._tmp.name)
        (folder / "config").write_text(self._config())
        (folder / "accounts").write_text(self.account.uri() + "\n")
        os.chmod(folder / "accounts", 0o600)
        (folder / "contacts").write_text("")
        self.proc = subprocess.Popen(
            [baresip_binary(), "-f", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=open(folder / "baresip.log", "wb"),  # noqa: SIM115 - closed by the child's exit
            stderr=subprocess.STDOUT,
            cwd=str(folder),
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                return (Path(self._tmp.name) / "baresip.log").read_text(errors="replace")
        return self.log_text

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5) -> None:
        proc, self.proc = self.proc, None
        stop_group(proc, timeout)
        self.log_text = self.log()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def wait_log(self, text: str, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.1)
        return False

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
