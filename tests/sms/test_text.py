"""SMS limits and the reply grammar."""

from __future__ import annotations

from dispatch.sms_replies import parse
from sms.text import prepare, segments


def test_segments_gsm_and_ucs2():
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("中" * 70) == 1
    assert segments("中" * 71) == 2
    assert segments("中" * 134) == 2
    assert segments("中" * 135) == 3


def test_china_bodies_lose_links_and_are_capped():
    body, parts = prepare(
        "请查看 https://evil.example.com/x?y=1 或 www.foo.cn 详情", china=True, max_segments=3
    )
    assert "http" not in body and "www" not in body and "example" not in body
    assert parts == 1
    long_body, parts = prepare("工单" * 200, china=True, max_segments=3)
    assert parts == 3 and len(long_body) == 201 and long_body.endswith("…")
    ascii_body, parts = prepare("x" * 1000, china=False, max_segments=2)
    assert parts == 2 and len(ascii_body) == 306 and ascii_body.endswith("...")


def test_parse_the_four_replies_with_full_width_forms():
    assert parse("签收 1234").command == "签收"
    r = parse("办结　１２３４　已修好灯泡")  # full-width space and digits
    assert (r.command, r.code, r.text) == ("办结", "1234", "已修好灯泡")
    assert parse("退单 1234 不属于本片区").text == "不属于本片区"
    assert parse("进度1234 已联系居民").code == "1234"
    assert parse("签收1234").code == "1234"


def test_parse_refuses_malformed():
    for body in ("", "你好", "签收", "签收 abc", "退单 1234", "进度 1234", "办结 12", "删除 1234"):
        assert parse(body) is None, body
