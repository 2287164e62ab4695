"""The dial-out policy: which numbers the hotline may call, and why not.

Every path that dials an outside number asks :func:`check` first: the callback a waiting caller
books (their caller ID is whatever the caller's network, or the caller, put in ``From``), the
follow-up call (回访) to a number typed by a seat or sent by Open311, click-to-call and transfers
to outside numbers. A caller ID is not proof of anything, so the policy allows only what
``phonenumbers`` parses as a valid mainland-China mobile or fixed-line number, plus numbers
under prefixes an administrator allowed (``dialout_extra_prefixes``). Emergency numbers, short
codes, service numbers (95xxx, 96xxx, 1xxxx such as 12345), international and premium ranges are
refused, and automatic calls per number per day are capped (the caller counts them).

``check`` is pure: no database, no clock, no services; the reason is a word whose catalogue
keys are ``errors.dialout.<reason>`` and ``js.dialout.<reason>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from callcenter.config import Settings
from callcenter.phone import normalize

# Reasons, as stored and as named in the catalogues.
ALLOWED = "allowed"
EMPTY = "empty"
TOO_LONG = "too_long"
BAD_CHARACTERS = "bad_characters"
EMERGENCY = "emergency"
SHORT_CODE = "short_code"
SERVICE_NUMBER = "service_number"
INTERNATIONAL = "international"
NOT_A_NUMBER = "not_a_number"
NOT_MOBILE_OR_LANDLINE = "not_mobile_or_landline"
DAILY_CAP = "daily_cap"
REASONS = (
    EMPTY,
    TOO_LONG,
    BAD_CHARACTERS,
    EMERGENCY,
    SHORT_CODE,
    SERVICE_NUMBER,
    INTERNATIONAL,
    NOT_A_NUMBER,
    NOT_MOBILE_OR_LANDLINE,
    DAILY_CAP,
)

# A written number is short: anything longer is refused before it is looked at.
MAX_INPUT = 40
# What a person writes in a number: ASCII digits, one leading +, spaces, dashes, brackets, dots.
# Unicode digits (full-width, superscript, Arabic-Indic ...) are refused, not read as digits.
_WRITTEN = re.compile(r"[0-9 ()./+-]+")
_SEPARATORS = re.compile(r"[ ()./-]")
_DIGITS = re.compile(r"\+?[0-9]+")
# Emergency and public-safety numbers of China and the numbers foreign phones know as emergency.
EMERGENCY_NUMBERS = frozenset(
    {"110", "112", "119", "120", "122", "999", "911", "000", "08", "118", "12110", "12395", "12119"}
)
# Chinese service ranges that are never a resident's phone: 95xxx / 96xxx (banks, utilities,
# hotlines like 96345), 1xxxx short service numbers (10086, 12345, 12315 ...), 400 / 800.
_SERVICE = re.compile(r"(?:9[56][0-9]{3,6}|1[0-2][0-9]{2,6}|400[0-9]{7}|800[0-9]{7})")
_DIALLABLE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
# The prefixes carriers and callers put before a Chinese number's national part.
_CN_PREFIXES = ("+86", "0086")


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer. ``number``: E.164 (what is stored and counted); ``digits``: what the
    carrier is sent (the national form: 13912345678, 09318123456)."""

    allowed: bool
    reason: str
    number: str = ""
    digits: str = ""

    @property
    def key(self) -> str:
        return f"errors.dialout.{self.reason}"


def _refused(reason: str) -> Decision:
    return Decision(False, reason)


def _national_part(digits: str) -> str:
    """The number without a Chinese country prefix, for the deny lists (``+86110`` is 110)."""
    for prefix in _CN_PREFIXES:
        if digits.startswith(prefix):
            return digits[len(prefix) :]
    if digits.startswith("86") and len(digits) <= 10:
        return digits[2:]
    return digits.removeprefix("+")


def _denied(national: str) -> str | None:
    """The deny lists, on the national digits: emergency, short and service numbers."""
    bare = national.lstrip("0") if national.startswith("0") and len(national) <= 6 else national
    if national in EMERGENCY_NUMBERS or bare in EMERGENCY_NUMBERS:
        return EMERGENCY
    if _SERVICE.fullmatch(national):
        return SERVICE_NUMBER
    if len(national) <= 6:
        return SHORT_CODE
    return None


def _extra(e164: str, prefixes: Iterable[str]) -> bool:
    return any(p and e164.startswith(p if p.startswith("+") else "+" + p) for p in prefixes)


def check(
    number: str,
    settings: Settings | None = None,
    *,
    extra_prefixes: Iterable[str] | None = None,
    calls_today: Callable[[str], int] | None = None,
    daily_cap: int | None = None,
) -> Decision:
    """May the hotline call ``number``? Pure and total: any string gets a Decision.

    ``settings`` gives the region, area code, extra prefixes and the daily cap; ``calls_today``
    (E.164 -> automatic calls already placed or booked today) is given only for automatic calls.
    """
    if not isinstance(number, str) or not number.strip(" "):
        return _refused(EMPTY)
    if len(number) > MAX_INPUT:
        return _refused(TOO_LONG)
    # Only spaces are trimmed: a newline or any other character is refused, not cleaned away.
    text = number.strip(" ")
    if not _WRITTEN.fullmatch(text):
        return _refused(BAD_CHARACTERS)
    digits = _SEPARATORS.sub("", text)
    if not digits.removeprefix("+"):
        return _refused(EMPTY)
    if not _DIGITS.fullmatch(digits):
        return _refused(BAD_CHARACTERS)
    denied = _denied(_national_part(digits))
    if denied is not None:
        return _refused(denied)
    region = settings.default_region if settings else "CN"
    area = settings.default_area_code if settings else "931"
    e164 = normalize(digits, region, area)
    if e164 is None:
        return _refused(NOT_A_NUMBER)
    parsed = phonenumbers.parse(e164, None)
    prefixes = list(extra_prefixes or []) + list(settings.dialout_extra_prefixes if settings else [])
    national = str(parsed.national_number)
    if parsed.country_code == 86:
        denied = _denied(national)
        if denied is not None:
            return _refused(denied)
    elif not _extra(e164, prefixes):
        return _refused(INTERNATIONAL)
    if phonenumbers.number_type(parsed) not in _DIALLABLE_TYPES:
        return _refused(NOT_MOBILE_OR_LANDLINE)
    if parsed.country_code == 86:
        # National form: a landline keeps its trunk 0 (0931 ...), a mobile has none.
        dial = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        dial = re.sub(r"[^0-9]", "", dial)
    else:
        dial = "00" + e164[1:]
    cap = daily_cap if daily_cap is not None else (settings.dialout_daily_cap if settings else None)
    if calls_today is not None and cap is not None and calls_today(e164) >= cap:
        return Decision(False, DAILY_CAP, e164, dial)
    return Decision(True, ALLOWED, e164, dial)
