"""A self-signed certificate for the SIP TLS transport (tests, a lab, a first install).

A production hotline puts its own certificate's paths in ``sip_tls_cert`` / ``sip_tls_key``;
this writes ``<data_dir>/tls/sip.crt`` and ``sip.key`` (mode 0600), which the renderer picks up
when those settings are empty. Made with the ``openssl`` command (scripts/install-deps.sh).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from callcenter.config import Settings

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")


def _san(names: list[str]) -> str:
    parts = []
    for name in names:
        try:
            parts.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a host name or address: {name!r}") from None
            parts.append(f"DNS:{name}")
    return ",".join(parts)


def make_self_signed(settings: Settings, names: list[str], days: int = 825) -> tuple[Path, Path]:
    """Write a self-signed certificate for ``names`` (host names or addresses; the first is its
    common name) into <data_dir>/tls; return (certificate, key)."""
    names = names or ["localhost", "127.0.0.1"]
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed (scripts/install-deps.sh installs it)")
    target = settings.data_dir / "tls"
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        key, cert = Path(tmp) / "sip.key", Path(tmp) / "sip.crt"
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-days",
                str(max(1, int(days))),
                "-subj",
                f"/CN={names[0]}",
                "-addext",
                f"subjectAltName={_san(names)}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        os.chmod(key, 0o600)
        os.replace(key, target / "sip.key")
        os.replace(cert, target / "sip.crt")
    return target / "sip.crt", target / "sip.key"
