"""Files attached to an article (the policy's text, the application form): checked by their
content, not by the name or type the browser claims, bounded in size and number, stored
owner-only under ``<data_dir>/attachments/kb`` with random names. The article lists them as
``{"id", "name", "type", "size"}``; adding or removing one is a step of its history."""

from __future__ import annotations

import io
import os
import secrets
import zipfile
from pathlib import Path
from typing import Any

from sqlmodel import Session

from callcenter.config import Settings
from callcenter.knowledge import service
from callcenter.knowledge.models import Article, KbRole

MAX_BYTES = 5 * 1024 * 1024
MAX_NAME = 120

# The file's first bytes decide what it is; Office files are zip archives whose parts say which.
_MAGIC: list[tuple[bytes, str, str]] = [
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
]
_OFFICE = {
    "word/document.xml": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".docx",
    ),
    "xl/workbook.xml": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
}
TYPES = {ext: ctype for _m, ctype, ext in _MAGIC} | {ext: ctype for ctype, ext in _OFFICE.values()}


def sniff(data: bytes) -> tuple[str, str] | None:
    for magic, ctype, ext in _MAGIC:
        if data.startswith(magic):
            return ctype, ext
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError):
            return None
        if "[Content_Types].xml" in names:
            for part, kind in _OFFICE.items():
                if part in names:
                    return kind
    return None


def folder(settings: Settings) -> Path:
    path = settings.data_dir.resolve() / "attachments" / "kb"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _file_id(value: str) -> str:
    """A stored name is ours: 32 hex digits and a known extension, never a path."""
    stem, dot, ext = value.partition(".")
    if len(stem) != 32 or any(c not in "0123456789abcdef" for c in stem) or "." + ext not in TYPES:
        raise service.KnowledgeError("no such attachment", "not_found")
    return value


def add(
    session: Session, settings: Settings, person: service.Person, article_id: int, filename: str, data: bytes
) -> dict[str, Any]:
    """Store one file for the article (editors; no commit)."""
    service.need(session, person, KbRole.EDITOR)
    article = service.get(session, article_id)
    if len(article.attachments) >= service.MAX_ATTACHMENTS:
        raise service.KnowledgeError(f"at most {service.MAX_ATTACHMENTS} attachments")
    if not data:
        raise service.KnowledgeError("the file is empty")
    if len(data) > MAX_BYTES:
        raise service.KnowledgeError(f"files up to {MAX_BYTES // (1024 * 1024)} MB")
    kind = sniff(data)
    if kind is None:
        raise service.KnowledgeError("only PDF, PNG, JPEG, Word (.docx) and Excel (.xlsx) files")
    ctype, ext = kind
    stored = secrets.token_hex(16) + ext
    fd = os.open(folder(settings) / stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    name = service.clean_text(Path(filename or "file").name, MAX_NAME, "filename") or "file"
    entry = {"id": stored, "name": name, "type": ctype, "size": len(data)}
    article.attachments = [*article.attachments, entry]  # a new list: the JSON column sees the change
    session.add(article)
    session.flush()
    service.step(session, article, "attach", person, name)
    return entry


def remove(session: Session, person: service.Person, article_id: int, file_id: str) -> Article:
    """Take a file off the article (editors); the file stays for the versions that list it."""
    file_id = _file_id(file_id)
    service.need(session, person, KbRole.EDITOR)
    article = service.get(session, article_id)
    kept = [a for a in article.attachments if a.get("id") != file_id]
    if len(kept) == len(article.attachments):
        raise service.KnowledgeError("no such attachment", "not_found")
    article.attachments = kept
    session.add(article)
    service.step(session, article, "detach", person, file_id)
    return article


def find(settings: Settings, article: Article, file_id: str) -> tuple[Path, dict[str, Any]]:
    """The stored file of one of the article's attachments."""
    file_id = _file_id(file_id)
    for entry in article.attachments:
        if entry.get("id") == file_id:
            path = folder(settings) / Path(file_id).name
            if path.is_file():
                return path, entry
    raise service.KnowledgeError("no such attachment", "not_found")
