import pytest

from callcenter.phone import display, normalize

CASES = [
    ("13912345678", "+8613912345678"),
    ("+8613912345678", "+8613912345678"),
    ("+86 139 1234 5678", "+8613912345678"),
    ("008613912345678", "+8613912345678"),
    ("8613912345678", "+8613912345678"),
    ("1791113912345678", "+8613912345678"),  # IP long-distance prefix
    ("18693101234", "+8618693101234"),
    ("0931-8123456", "+869318123456"),
    ("09318123456", "+869318123456"),
    ("(0931) 812 3456", "+869318123456"),
    ("8123456", "+869318123456"),  # local landline, Lanzhou area code added
    ("+869318123456", "+869318123456"),
    ("010-62345678", "+861062345678"),
    ("+1 650 253 0000", "+16502530000"),
    ("12345", None),
    ("", None),
    (None, None),
    ("anonymous", None),
    ("<script>alert(1)</script>", None),
    ("139123456789", None),
    ("+86+139", None),
    ("1" * 500, None),
]


@pytest.mark.parametrize("raw,expected", CASES)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_display():
    assert display("+8613912345678") == "139 1234 5678"
    assert display("+869318123456") == "0931 812 3456"
    assert display(None) == ""


def test_display_of_mainland_mobiles_is_phonenumbers_national_format():
    import random

    import phonenumbers

    rng = random.Random(7)
    for prefix in range(130, 200):
        for _ in range(50):
            e164 = f"+86{prefix}{rng.randrange(10**8):08d}"
            expected = phonenumbers.format_number(
                phonenumbers.parse(e164, "CN"), phonenumbers.PhoneNumberFormat.NATIONAL
            )
            assert display(e164) == expected, e164
    # Not a mobile's length or prefix: phonenumbers formats it, as before.
    for other in ("+86139123456789", "+8612912345678", "+869318123456", "+85291234567"):
        number = phonenumbers.parse(other, "CN")
        fmt = phonenumbers.PhoneNumberFormat
        expected = phonenumbers.format_number(
            number, fmt.NATIONAL if number.country_code == 86 else fmt.INTERNATIONAL
        )
        assert display(other) == expected, other
