"""The dial-out policy over the hostile corpus (tests/data/hostile/dialout.json), its reasons,
the daily cap and the administrator's extra prefixes; it never raises, whatever the input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from callcenter.dialout import policy
from callcenter.dialout.policy import check

CORPUS = json.loads((Path(__file__).resolve().parents[2] / "data" / "hostile" / "dialout.json").read_text())


@pytest.mark.parametrize("number", CORPUS["forbidden"])
def test_forbidden_numbers_are_refused(number):
    decision = check(number)
    assert not decision.allowed and decision.reason in policy.REASONS
    assert decision.digits == "" or decision.reason == policy.DAILY_CAP


@pytest.mark.parametrize("number", CORPUS["allowed"])
def test_mainland_mobiles_and_landlines_are_allowed(number):
    decision = check(number)
    assert decision.allowed and decision.reason == policy.ALLOWED
    assert decision.number.startswith("+86") and decision.digits.isascii() and decision.digits.isdigit()


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110", "emergency"),
        ("+86 119", "emergency"),
        ("120", "emergency"),
        ("122", "emergency"),
        ("999", "emergency"),
        ("12345", "service_number"),
        ("95588", "service_number"),
        ("96345", "service_number"),
        ("4001234567", "service_number"),
        ("5678", "short_code"),
        ("+882164000000", "international"),
        ("00882164000000", "international"),
        ("+2693123456", "international"),
        ("9" * 5000, "too_long"),
        ("１３８００１３８０００", "bad_characters"),
        ("²", "bad_characters"),
        ("13800138000\n", "bad_characters"),
        ("", "empty"),
        ("13800", "short_code"),
        ("23800138000", "not_a_number"),
    ],
)
def test_each_refusal_says_why(number, reason):
    assert check(number).reason == reason


def test_the_carrier_gets_the_national_form():
    assert check("+86 139-1931-0001").digits == "13919310001"
    assert check("0931-8123456") == policy.Decision(True, "allowed", "+869318123456", "09318123456")
    assert check("8123456", None).number == "+869318123456"  # a local landline: Lanzhou's area code


def test_extra_prefixes_allow_a_region_but_never_emergency_or_premium(settings):
    assert check("+852 9123 4567", settings).reason == "international"
    settings.dialout_extra_prefixes = ["+852"]
    allowed = check("+852 9123 4567", settings)
    assert allowed.allowed and allowed.digits == "0085291234567"
    assert check("+882164000000", settings, extra_prefixes=["+882"]).reason == "not_mobile_or_landline"
    assert not check("+852 999", settings).allowed


def test_automatic_calls_are_capped_per_number(settings):
    settings.dialout_daily_cap = 2
    counts = {"+8613800138000": 2}
    refused = check("13800138000", settings, calls_today=lambda n: counts.get(n, 0))
    assert not refused.allowed and refused.reason == "daily_cap" and refused.number == "+8613800138000"
    assert check("13919310001", settings, calls_today=lambda n: counts.get(n, 0)).allowed
    assert check("13800138000", settings).allowed  # staff dialling is not counted


def test_any_string_gets_a_decision():
    rng = random.Random(7)
    alphabet = "0123456789+ -()./;,\n\r\t\x00#*abc١２³\u202e\u200b"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        decision = check(text)
        assert decision.reason in (*policy.REASONS, policy.ALLOWED)
        if decision.allowed:
            assert decision.number.startswith("+86")
    assert check(None).reason == "empty"  # type: ignore[arg-type]
