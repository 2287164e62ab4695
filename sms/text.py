"""What an SMS may say: the providers' limits, applied before a message enters the outbox.

A GSM-7 message holds 160 characters (153 per part when concatenated); anything else (Chinese)
is UCS-2: 70 characters, 67 per part. Domestic Chinese SMS may not carry links (carriers and
Aliyun's template review reject them), so URLs are taken out when ``china`` is set.
"""

from __future__ import annotations

import re

GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
# A URL, or a whole dotted name (taken at once, never re.tried from inside: linear in the text's
# length) whose part up to a known top-level domain is a link (``_unlink``).
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S+|(?<![a-z0-9.-])(?>[a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:/\S*)?")
_TLDS = frozenset({"com", "cn", "net", "org", "gov", "io"})


def _unlink(m: re.Match[str]) -> str:
    found = m.group(0)
    if "/" in found.split(".", 1)[0] or found.lower().startswith("www."):
        return ""  # a URL (the first alternative)
    name, slash, _path = found.partition("/")
    labels = name.split(".")
    last = max((i for i in range(1, len(labels)) if labels[i].lower() in _TLDS), default=0)
    if last == 0:
        return found
    if last == len(labels) - 1:
        return ""  # the name and its path
    return "." + ".".join(labels[last + 1 :]) + slash + _path


class MessageTooLong(ValueError):
    pass


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7 for ch in text)


def segments(text: str) -> int:
    """How many SMS parts the text takes."""
    single, part = (160, 153) if is_gsm7(text) else (70, 67)
    n = len(text)
    if n <= single:
        return 1
    return -(-n // part)


def strip_links(text: str) -> str:
    return re.sub(r"[ \t]{2,}", " ", _LINK.sub(_unlink, text)).strip()


def prepare(
    text: str, *, china: bool, max_segments: int, registered_links: tuple[str, ...] = ()
) -> tuple[str, int]:
    """The body as it will be sent and its part count; too long for ``max_segments``: cut with '…'.

    ``registered_links``: fixed addresses registered with the SMS platform (the resident's page),
    which domestic SMS may carry; every other link is taken out. Cutting keeps the start (the
    order's code and the action come first in every notice)."""
    body = " ".join(text.replace("\r", "").split("\n")).strip() if china else text.strip()
    if china:
        kept = [link for link in registered_links if link and link in body]
        for i, link in enumerate(kept):
            body = body.replace(link, f"\x00{i}\x00")
        body = strip_links(body)
        for i, link in enumerate(kept):
            body = body.replace(f"\x00{i}\x00", link)
    if not body:
        raise ValueError("empty SMS body")
    gsm = is_gsm7(body)
    limit = (153 if gsm else 67) * max_segments if max_segments > 1 else (160 if gsm else 70)
    if len(body) > limit:
        ellipsis = "..." if gsm else "…"
        body = body[: limit - len(ellipsis)] + ellipsis
    return body, segments(body)
