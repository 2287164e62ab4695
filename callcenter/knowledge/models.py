"""The knowledge base's tables: articles and their versions, who edits and reviews, synonyms,
the search index (segmented text and term frequencies), and what seats did with the articles."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from callcenter.clock import utcnow


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    REVIEWED = "reviewed"
    PUBLISHED = "published"
    EXPIRED = "expired"


class KbRole(StrEnum):
    """What a person may do to articles: editors write, reviewers check and publish."""

    EDITOR = "editor"
    REVIEWER = "reviewer"


class Article(SQLModel, table=True):
    __tablename__ = "kb_article"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    # How residents ask, one form a line (标准问 first, then 相似问法).
    questions: str = Field(default="", max_length=4000)
    spoken: str = Field(default="", max_length=500)  # 答复口径: what the seat reads out
    answer: str = Field(default="", max_length=8000)  # the full text
    keywords: str = Field(default="", max_length=500)  # comma-separated
    category_id: int | None = Field(default=None, foreign_key="category.id", index=True)
    owner_office: str = Field(default="", max_length=64)  # 来源单位
    owner: str = Field(default="", max_length=64, index=True)  # the account told of feedback
    source_doc: str = Field(default="", max_length=200)
    source_number: str = Field(default="", max_length=64)  # 文号
    valid_from: date | None = None
    valid_until: date | None = Field(default=None, index=True)
    # {"id": stored name, "name", "type", "size"} (callcenter.knowledge.attachments)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=ArticleStatus.DRAFT.value, max_length=16, index=True)
    version: int = 1
    demo: bool = False
    created_by: str = Field(default="", max_length=64)
    edited_by: str = Field(default="", max_length=64)  # the last edit's author (not its reviewer)
    reviewed_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    uses: int = 0  # calls answered with it


class ArticleVersion(SQLModel, table=True):
    """Every saved content of an article, and every status change, kept."""

    __tablename__ = "kb_article_version"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    version: int
    status: str = Field(max_length=16)
    action: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    note: str = Field(default="", max_length=500)
    content: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class KbMember(SQLModel, table=True):
    """An account's knowledge-base role beyond what its account role gives."""

    __tablename__ = "kb_member"
    __table_args__ = (UniqueConstraint("username", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    role: str = Field(max_length=16)


class Synonym(SQLModel, table=True):
    """A group of words meaning the same (低保 = 最低生活保障); editors keep them."""

    __tablename__ = "kb_synonym"

    id: int | None = Field(default=None, primary_key=True)
    words: str = Field(max_length=500)  # comma-separated, the first one the main word


class SearchDoc(SQLModel, table=True):
    """The segmented text of a published article: space-separated tokens per field (FTS5 reads
    it as external content; PostgreSQL adds a tsvector column to it)."""

    __tablename__ = "kb_doc"

    article_id: int = Field(primary_key=True, foreign_key="kb_article.id")
    title: str = ""
    questions: str = ""
    answer: str = ""
    extra: str = ""  # keywords, synonyms, pinyin and initials
    category_id: int | None = Field(default=None, index=True)


class Term(SQLModel, table=True):
    """How many indexed articles hold a token (its document frequency, for BM25)."""

    __tablename__ = "kb_term"

    term: str = Field(primary_key=True, max_length=64)
    df: int = 0


class Use(SQLModel, table=True):
    """A call answered with an article (直接答复), with the order it closed."""

    __tablename__ = "kb_use"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    version: int
    order_id: int | None = Field(default=None, foreign_key="workorder.id")
    seat: str = Field(default="", max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)


class Feedback(SQLModel, table=True):
    """A seat's report that an answer was wrong or missing, for the article's owner."""

    __tablename__ = "kb_feedback"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int | None = Field(default=None, foreign_key="kb_article.id", index=True)
    kind: str = Field(max_length=16)  # wrong | missing
    text: str = Field(default="", max_length=1000)
    query: str = Field(default="", max_length=200)
    owner: str = Field(default="", max_length=64, index=True)
    by: str = Field(default="", max_length=64)
    at: datetime = Field(default_factory=utcnow)
    resolved: bool = False


class SearchMiss(SQLModel, table=True):
    """A search that found nothing: a gap to write."""

    __tablename__ = "kb_search_miss"

    id: int | None = Field(default=None, primary_key=True)
    query: str = Field(max_length=200, index=True)
    seat: str = Field(default="", max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)
