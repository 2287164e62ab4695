"""The socket's text: what the pages parse."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from web_console.protocol import encode, envelope


def test_a_frame_is_the_message_as_json_with_chinese_unescaped():
    message = envelope(
        "seat.1001",
        {"topic": "ignored", "type": "pop", "resident": {"id": 7, "name": "张三 <b>\u202e"}, "n": 1.5},
    )
    text = encode(message)
    assert "张三" in text  # not \u-escaped: a pop is sent in full on every frame
    assert json.loads(text) == {
        "topic": "seat.1001",
        "type": "pop",
        "resident": {"id": 7, "name": "张三 <b>\u202e"},
        "n": 1.5,
    }


def test_what_is_not_json_by_nature_is_written_as_its_text():
    at = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    assert json.loads(encode({"at": at, "by_seat": {1001: 2}})) == {"at": str(at), "by_seat": {"1001": 2}}
