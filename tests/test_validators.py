"""Validators match whole values: a trailing newline (which would end an AMI header or an AGI
command) is refused, and no pattern in the product is anchored with ``^…$`` for ``re.match``
(``$`` also matches before a final newline)."""

from __future__ import annotations

import re
from pathlib import Path

from agi_scripts import incoming, server
from callcenter import ids, mail
from callcenter.accounts import flows as accounts
from callcenter.ami import actions
from callcenter.callcontrol import service as callcontrol
from callcenter.text import digits_int, is_digits

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("callcenter", "agi_scripts", "asterisk_conf", "dispatch", "sms", "web_console", "hotline")
# Parsers of Asterisk's own config files, not validators of outside values.
PARSERS = {"asterisk_conf/installer.py"}


def test_no_dollar_anchored_validators_in_the_product():
    anchored = re.compile(r"""re\.(?:compile|match)\(\s*r?["']\^[^"']*\$["']""")
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in PARSERS:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if anchored.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "use re.fullmatch (or \\Z):\n" + "\n".join(found)


def test_a_trailing_newline_is_refused():
    assert ids.is_extension("1001") and not ids.is_extension("1001\n")
    assert ids.is_queue("hotline") and not ids.is_queue("hotline\n")
    assert ids.is_call_id("1700000000.1") and not ids.is_call_id("1700000000.1\n")
    assert callcontrol.NUMBER.fullmatch("96345") and not callcontrol.NUMBER.fullmatch("96345\n")
    assert mail.valid_address("a@b.cn") and not mail.valid_address("a@b.cn\n")
    assert accounts.USERNAME.fullmatch("seat1") and not accounts.USERNAME.fullmatch("seat1\n")
    assert incoming._ORDER.fullmatch("GS1") and not incoming._ORDER.fullmatch("GS1\n")
    assert server._MSET_VALUE.fullmatch("abc") and not server._MSET_VALUE.fullmatch("abc\n")
    assert actions.hangup("PJSIP/seat1001-00000001") is not None
    assert actions.hangup("PJSIP/seat1001-00000001\n") is None
    assert actions.redirect("PJSIP/seat1001-00000001", "cc-xfer\n", "1001") is None


def test_ascii_digits_only():
    assert is_digits("0123") and digits_int("42") == 42
    for odd in ("²", "١٢٣", "１２３", "", " 1", "1\n", "-1", "9" * 19, None, 12):
        assert not is_digits(odd) and digits_int(odd) is None
