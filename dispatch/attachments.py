"""Order attachments: photos and documents uploaded by seats and outlets, checked by content (not
by the name or type the browser claims), stored under ``<data_dir>/attachments`` with random names."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlmodel import Session

from callcenter.config import Settings
from callcenter.database import saved_id
from dispatch.errors import DispatchError
from dispatch.models import OrderAttachment, WorkOrder
from dispatch.service import clean

MAX_BYTES = 5 * 1024 * 1024

# The file's first bytes decide what it is.
_MAGIC: list[tuple[bytes, str, str]] = [
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"%PDF-", "application/pdf", ".pdf"),
]


def sniff(data: bytes) -> tuple[str, str] | None:
    for magic, ctype, ext in _MAGIC:
        if data.startswith(magic):
            return ctype, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None


def folder(settings: Settings) -> Path:
    path = settings.data_dir.resolve() / "attachments"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # residents' photos: the app's only
    return path


def save(
    session: Session, settings: Settings, order: WorkOrder, filename: str, data: bytes, uploaded_by: str
) -> OrderAttachment:
    """Store one file for the order (no commit). Refuses empty, oversized and unknown files."""
    if not data:
        raise DispatchError("the file is empty")
    if len(data) > MAX_BYTES:
        raise DispatchError(f"files up to {MAX_BYTES // (1024 * 1024)} MB")
    kind = sniff(data)
    if kind is None:
        raise DispatchError("only JPEG, PNG, GIF, WebP images and PDF documents")
    ctype, ext = kind
    stored_as = secrets.token_hex(16) + ext
    fd = os.open(folder(settings) / stored_as, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    row = OrderAttachment(
        order_id=saved_id(order),
        filename=clean(Path(filename or "file").name, 128) or "file",
        content_type=ctype,
        size=len(data),
        stored_as=stored_as,
        uploaded_by=uploaded_by,
    )
    session.add(row)
    session.flush()
    return row


def path_of(settings: Settings, row: OrderAttachment) -> Path:
    # stored_as is ours (hex + a known extension), never the uploader's name.
    return folder(settings) / Path(row.stored_as).name
