"""The self-signed certificate for SIP over TLS (`callcenter asterisk tls-cert`)."""

from __future__ import annotations

import subprocess

import pytest

from asterisk_conf import tls
from callcenter.config import Settings
from tests.conftest import require


def test_self_signed_certificate_names_the_hosts_and_keeps_its_key_private(tmp_path):
    openssl = require("openssl")
    settings = Settings(data_dir=tmp_path / "var", _env_file=None)
    assert settings.sip_tls_files() is None  # no certificate: no TLS transport
    cert, key = tls.make_self_signed(settings, ["192.168.1.10", "pbx.local"], days=30)
    assert settings.sip_tls_files() == (cert, key)
    assert (key.stat().st_mode & 0o077) == 0 and (cert.parent.stat().st_mode & 0o077) == 0
    args = [openssl, "x509", "-in", str(cert), "-noout", "-text"]
    text = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "IP Address:192.168.1.10" in text.stdout and "DNS:pbx.local" in text.stdout
    assert "CN = 192.168.1.10" in text.stdout


@pytest.mark.parametrize("name", ["a b", "x/../y", "host\nname", "-subj"])
def test_names_that_are_not_hosts_are_refused(tmp_path, name):
    require("openssl")
    with pytest.raises(ValueError):
        tls.make_self_signed(Settings(data_dir=tmp_path, _env_file=None), ["localhost", name])
