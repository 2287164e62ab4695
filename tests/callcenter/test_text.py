"""Text made harmless: the fast path agrees with the character-by-character rule."""

from __future__ import annotations

import sys
import unicodedata

from callcenter.text import caller_name, no_controls

_REMOVED = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def test_no_controls_removes_exactly_the_control_format_and_separator_characters():
    for start in range(0, sys.maxunicode + 1, 64):
        chunk = "".join(chr(c) for c in range(start, start + 64))
        expected = "".join(ch for ch in chunk if unicodedata.category(ch) not in _REMOVED)
        assert no_controls(chunk) == expected, hex(start)
        for ch in chunk:  # one character alone takes the fast path when it may
            removed = unicodedata.category(ch) in _REMOVED
            assert no_controls(f"张{ch}三") == ("张三" if removed else f"张{ch}三")


def test_a_caller_name_keeps_its_spaces_and_loses_its_tricks():
    assert caller_name("王\u3000小明 ") == "王\u3000小明"  # an ideographic space is text
    assert caller_name("\u202eevil\u200b\r\nname") == "evilname"
    assert caller_name("长" * 500) == "长" * 80
