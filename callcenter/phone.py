"""Caller-ID normalisation (phonenumbers): mobiles, 0931 landlines, +86 / 0086 forms, to E.164."""

from __future__ import annotations

import functools
import re

import phonenumbers

_DIGITS = re.compile(r"[^0-9+]")
_CN_MOBILE = re.compile(r"\+861[3-9][0-9]{9}")
MAX_RAW = 40


# A call's number is read several times (the route, the profile, every pop): parsed once.
@functools.lru_cache(maxsize=8192)
def normalize(raw: str | None, region: str = "CN", area_code: str = "931") -> str | None:
    """Return the E.164 form of a caller number, or None when it is not a usable number.

    Handles 13912345678, +86 139…, 0086 139…, 86139…, 0931-8123456, 8123456 (a local
    landline, given the default area code), and carrier prefixes like 17951.
    """
    if not raw:
        return None
    text = _DIGITS.sub("", raw[:MAX_RAW])
    if not text or text.count("+") > 1 or ("+" in text and not text.startswith("+")):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    # IP long-distance prefixes some carriers put in front of the number.
    for prefix in ("17951", "17911", "12593", "17909"):
        if text.startswith(prefix) and len(text) > 11 + len(prefix) - 1:
            text = text[len(prefix) :]
    if not text.startswith("+"):
        if text.startswith("86") and len(text) >= 12:
            text = "+" + text
        elif len(text) in (7, 8) and text[0] != "0" and text[0] != "1":
            # A local landline without its area code.
            text = "0" + area_code + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str | None) -> bool:
    """A mainland mobile number (+86 1xx xxxx xxxx): only these can receive an SMS."""
    if not e164:
        return False
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(number)
    mobile = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return number.country_code == 86 and kind in mobile


@functools.lru_cache(maxsize=8192)
def display(e164: str | None, region: str = "CN") -> str:
    """How a seat reads a number: national format for Chinese numbers."""
    if not e164:
        return ""
    if _CN_MOBILE.fullmatch(e164):
        # Most callers: phonenumbers' national format of a mainland mobile, "139 1931 0001",
        # without its parse (a pop's costliest step; each caller's number is new to the cache).
        return f"{e164[3:6]} {e164[6:10]} {e164[10:]}"
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code == 86:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phone(phone: str) -> str:
    """Enough for a seat to recognise a number, not enough to copy it from a list."""
    if not phone:
        return ""
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"
