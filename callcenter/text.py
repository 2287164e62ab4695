"""Text made safe for lines other programs parse: Asterisk configs, AMI headers, queue_log fields."""

from __future__ import annotations

import unicodedata
from typing import TypeGuard

# Characters that end a value, start a comment, split a list or close a quote in Asterisk configs.
_NAME_BAD = set(';,"<>\\[]{}$`')
_CONTROL_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def no_controls(value: str, replacement: str = "") -> str:
    """Replace control, format and line/paragraph separator characters (CR, LF, U+2028, ...)."""
    if value.isprintable():
        # None of them (isprintable is False for every "Other" and "Separator" character but
        # the ASCII space), checked in C: every channel event's caller name passes here.
        return value
    return "".join(replacement if unicodedata.category(ch) in _CONTROL_CATEGORIES else ch for ch in value)


def storable(value: str) -> str:
    """Text as a database keeps it: a NUL character (PostgreSQL refuses it in text) becomes U+FFFD,
    so what came in is recorded, visibly damaged, rather than lost. For text that is not refused
    at the edge (a provider's SMS)."""
    return value.replace("\x00", "\ufffd")


CALLER_NAME_MAX = 80


def caller_name(value: str | None) -> str:
    """A caller-ID name as the caller's network sent it, made harmless before it reaches a pop,
    a record or a log: no control, format (bidi overrides, zero-width) or separator characters,
    at most ``CALLER_NAME_MAX`` characters."""
    text = no_controls((value or "")[: CALLER_NAME_MAX * 4], "")
    return text[:CALLER_NAME_MAX].strip()


def clean_name(value: str | None, fallback: str = "", maxlen: int = 40) -> str:
    """A display name safe inside any config line: no newlines, ``;``, ``,``, quotes, brackets."""
    text = no_controls(value or "", " ")
    text = "".join(ch for ch in text if ch not in _NAME_BAD)
    text = " ".join(text.split())[:maxlen].strip()
    return text or fallback


def is_digits(value: object, max_len: int = 18) -> TypeGuard[str]:
    """ASCII digits only, 1 to ``max_len`` of them: ``str.isdigit`` accepts '²' and '١', which
    ``int`` then refuses or reads, and a 5,000-digit number is beyond what ``int`` parses."""
    return isinstance(value, str) and 0 < len(value) <= max_len and value.isascii() and value.isdigit()


def digits_int(value: object, max_len: int = 18) -> int | None:
    """The number ``value`` spells in ASCII digits, else None (see ``is_digits``)."""
    return int(value) if is_digits(value, max_len) else None
