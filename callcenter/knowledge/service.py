"""Articles through their lifecycle: an editor writes a draft, a reviewer (not its last editor)
marks it reviewed and publishes it, and it expires on its last valid day or when a reviewer
withdraws it. Every save is a new version; every step is a version row and a line in the audit
log. Only published articles are in search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, func, select

from callcenter.audit.service import record as audit
from callcenter.clock import utcnow
from callcenter.errors import UserError
from callcenter.knowledge import search
from callcenter.knowledge.models import (
    Article,
    ArticleStatus,
    ArticleVersion,
    Feedback,
    KbMember,
    KbRole,
    SearchMiss,
    Synonym,
    Use,
)
from callcenter.text import no_controls

CONTENT_FIELDS: dict[str, int] = {
    "title": 200,
    "questions": 4000,
    "spoken": 500,
    "answer": 8000,
    "keywords": 500,
    "owner_office": 64,
    "owner": 64,
    "source_doc": 200,
    "source_number": 64,
}
MAX_ATTACHMENTS = 10
FEEDBACK_KINDS = ("wrong", "missing")


class KnowledgeError(UserError, domain="knowledge"):
    pass


def clean_text(value: str, limit: int, what: str) -> str:
    """Text from a person: no control characters but line breaks, at most ``limit`` characters."""
    value = "\n".join(no_controls(line).rstrip() for line in value.replace("\r\n", "\n").split("\n")).strip()
    if len(value) > limit:
        raise KnowledgeError(f"{what}: longer than {limit} characters", limit=limit)
    return value


@dataclass(frozen=True, slots=True)
class Person:
    """Who acts on articles: the account, its account role, its address (for the audit log)."""

    username: str
    role: str
    ip: str = ""


def roles_of(session: Session, person: Person) -> set[str]:
    """Administrators and supervisors edit and review; others as ``kb_member`` says."""
    if person.role in ("admin", "supervisor"):
        return {KbRole.EDITOR.value, KbRole.REVIEWER.value}
    rows = session.exec(select(KbMember.role).where(KbMember.username == person.username))
    return set(rows)


def grant(session: Session, username: str, role: str) -> None:
    if role not in {r.value for r in KbRole}:
        raise KnowledgeError(f"unknown role {role!r}")
    exists = session.exec(
        select(KbMember).where(KbMember.username == username, KbMember.role == role)
    ).first()
    if exists is None:
        session.add(KbMember(username=username[:64], role=role))


def need(session: Session, person: Person, role: KbRole) -> None:
    if role.value not in roles_of(session, person):
        raise KnowledgeError(f"the {role.value} role is needed", "forbidden")


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise KnowledgeError(f"{name}: not a date (YYYY-MM-DD)") from None


def _content(article: Article) -> dict[str, Any]:
    out: dict[str, Any] = {f: getattr(article, f) for f in CONTENT_FIELDS}
    out["category_id"] = article.category_id
    out["valid_from"] = article.valid_from.isoformat() if article.valid_from else None
    out["valid_until"] = article.valid_until.isoformat() if article.valid_until else None
    out["attachments"] = list(article.attachments)
    return out


def _apply(article: Article, data: dict[str, Any]) -> None:
    for name, limit in CONTENT_FIELDS.items():
        if name in data:
            setattr(article, name, clean_text(str(data[name] or ""), limit, name))
    if "questions" in data:
        lines = [q.strip() for q in article.questions.splitlines() if q.strip()]
        article.questions = "\n".join(lines)
    if "category_id" in data:
        value = data["category_id"]
        try:
            article.category_id = int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            raise KnowledgeError("category_id: not a number") from None
    if "valid_from" in data:
        article.valid_from = _date(data["valid_from"], "valid_from")
    if "valid_until" in data:
        article.valid_until = _date(data["valid_until"], "valid_until")
    if not article.title.strip():
        raise KnowledgeError("a title is required")
    if not (article.spoken.strip() or article.answer.strip()):
        raise KnowledgeError("an answer is required")
    if article.valid_from and article.valid_until and article.valid_until < article.valid_from:
        raise KnowledgeError("valid_until is before valid_from")


def record_version(session: Session, article: Article, action: str, actor: str, note: str = "") -> None:
    """The article as it is now, kept (every save and every status change)."""
    assert article.id is not None
    session.add(
        ArticleVersion(
            article_id=article.id,
            version=article.version,
            status=article.status,
            action=action,
            actor=actor,
            note=note[:500],
            content=_content(article),
        )
    )


def _check_category(session: Session, article: Article) -> None:
    # The category tree is the order domain's table (above this one): read by its name only.
    if article.category_id is not None:
        found = session.execute(text("SELECT 1 FROM category WHERE id = :id"), {"id": article.category_id})
        if found.first() is None:
            raise KnowledgeError("unknown category")


def step(session: Session, article: Article, action: str, person: Person, note: str = "") -> None:
    record_version(session, article, action, person.username, note)
    audit(
        session,
        person.username,
        f"kb.{action}",
        target=f"kb:{article.id}",
        role=person.role,
        ip=person.ip,
        version=article.version,
        status=article.status,
    )


def get(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise KnowledgeError("no such article", "not_found")
    return article


def create(session: Session, person: Person, data: dict[str, Any], demo: bool = False) -> Article:
    """A new draft (editors)."""
    need(session, person, KbRole.EDITOR)
    article = Article(title="", created_by=person.username, edited_by=person.username, demo=demo)
    _apply(article, data)
    _check_category(session, article)
    if not article.owner:
        article.owner = person.username
    session.add(article)
    session.flush()
    step(session, article, "create", person)
    return article


def edit(session: Session, person: Person, article_id: int, data: dict[str, Any]) -> Article:
    """A new version of the content; it goes back to draft and out of search until reviewed and
    published again (a changed answer is checked before seats read it out)."""
    need(session, person, KbRole.EDITOR)
    article = get(session, article_id)
    was_published = article.status == ArticleStatus.PUBLISHED
    _apply(article, data)
    _check_category(session, article)
    article.version += 1
    article.status = ArticleStatus.DRAFT.value
    article.edited_by = person.username
    article.reviewed_by = ""
    article.updated_at = utcnow()
    if was_published:
        search.unindex(session, article_id)
    session.add(article)
    step(session, article, "edit", person)
    return article


def review(session: Session, person: Person, article_id: int, note: str = "") -> Article:
    """draft → reviewed, by a reviewer other than the last editor."""
    need(session, person, KbRole.REVIEWER)
    article = get(session, article_id)
    if article.status != ArticleStatus.DRAFT:
        raise KnowledgeError(f"only a draft is reviewed (this one is {article.status})", "state")
    if article.edited_by == person.username:
        raise KnowledgeError("the last editor cannot review their own text", "forbidden")
    article.status = ArticleStatus.REVIEWED.value
    article.reviewed_by = person.username
    article.updated_at = utcnow()
    session.add(article)
    step(session, article, "review", person, note)
    return article


def send_back(session: Session, person: Person, article_id: int, note: str) -> Article:
    """reviewed or draft → draft with the reviewer's note (what to change)."""
    need(session, person, KbRole.REVIEWER)
    article = get(session, article_id)
    if article.status not in (ArticleStatus.DRAFT, ArticleStatus.REVIEWED):
        raise KnowledgeError(f"not under review (this one is {article.status})", "state")
    if not note.strip():
        raise KnowledgeError("say what to change")
    article.status = ArticleStatus.DRAFT.value
    article.reviewed_by = ""
    session.add(article)
    step(session, article, "send_back", person, note)
    return article


def publish(session: Session, person: Person, article_id: int, today: date) -> Article:
    """reviewed → published (in search), unless already past its last valid day."""
    need(session, person, KbRole.REVIEWER)
    article = get(session, article_id)
    if article.status != ArticleStatus.REVIEWED:
        raise KnowledgeError(f"only a reviewed article is published (this one is {article.status})", "state")
    if article.valid_until and article.valid_until < today:
        raise KnowledgeError("its last valid day has passed", "state")
    article.status = ArticleStatus.PUBLISHED.value
    article.published_at = utcnow()
    session.add(article)
    search.index(session, article)
    step(session, article, "publish", person)
    return article


def expire(session: Session, person: Person, article_id: int, note: str = "") -> Article:
    """published → expired (withdrawn by a reviewer)."""
    need(session, person, KbRole.REVIEWER)
    article = get(session, article_id)
    if article.status != ArticleStatus.PUBLISHED:
        raise KnowledgeError(f"only a published article expires (this one is {article.status})", "state")
    _expire(session, article, person, note)
    return article


def _expire(session: Session, article: Article, person: Person, note: str) -> None:
    assert article.id is not None
    article.status = ArticleStatus.EXPIRED.value
    article.updated_at = utcnow()
    session.add(article)
    search.unindex(session, article.id)
    step(session, article, "expire", person, note)


SYSTEM = Person("system", "system")


def expire_due(session: Session, today: date) -> list[int]:
    """Published articles past their last valid day leave search (the daily sweep)."""
    due = session.exec(
        select(Article).where(
            Article.status == ArticleStatus.PUBLISHED.value,
            col(Article.valid_until).is_not(None),
            col(Article.valid_until) < today,
        )
    ).all()
    for article in due:
        _expire(session, article, SYSTEM, "past valid_until")
    return [a.id for a in due if a.id is not None]


def expiring(session: Session, today: date, within_days: int = 30, owner: str = "") -> list[Article]:
    """Published articles whose last valid day comes within ``within_days``: for their owners to
    update before they lapse."""
    q = select(Article).where(
        Article.status == ArticleStatus.PUBLISHED.value,
        col(Article.valid_until).is_not(None),
        col(Article.valid_until) <= today + timedelta(days=within_days),
    )
    if owner:
        q = q.where(Article.owner == owner)
    return list(session.exec(q.order_by(col(Article.valid_until), col(Article.id))))


def versions(session: Session, article_id: int) -> list[ArticleVersion]:
    q = select(ArticleVersion).where(ArticleVersion.article_id == article_id)
    return list(session.exec(q.order_by(col(ArticleVersion.id))))


def add_synonyms(session: Session, person: Person, words: list[str]) -> Synonym:
    """A synonym group (editors): 低保, 最低生活保障 …"""
    need(session, person, KbRole.EDITOR)
    cleaned = [clean_text(w, 40, "words") for w in words if w.strip()]
    if len(cleaned) < 2:
        raise KnowledgeError("a synonym group has at least two words")
    row = Synonym(words=",".join(cleaned)[:500])
    session.add(row)
    session.flush()
    # Its words become whole words for the segmenter: the index is cut anew with them.
    search.rebuild(session)
    audit(session, person.username, "kb.synonyms", role=person.role, ip=person.ip, words=row.words)
    return row


def record_use(session: Session, article_id: int, order_id: int | None, seat: str) -> Use:
    """A call answered with this article (直接答复): counted, linked to the order."""
    article = get(session, article_id)
    if article.status != ArticleStatus.PUBLISHED:
        raise KnowledgeError("only a published article answers a call", "state")
    article.uses += 1
    session.add(article)
    use = Use(article_id=article_id, version=article.version, order_id=order_id, seat=seat[:64])
    session.add(use)
    return use


def feedback(
    session: Session, person: Person, article_id: int | None, kind: str, text: str, query: str = ""
) -> Feedback:
    """A seat says an answer was wrong, or that none was found: for the article's owner."""
    if kind not in FEEDBACK_KINDS:
        raise KnowledgeError(f"unknown feedback kind {kind!r}")
    owner = ""
    if article_id is not None:
        owner = get(session, article_id).owner
    elif kind == "wrong":
        raise KnowledgeError("which article was wrong?")
    row = Feedback(
        article_id=article_id,
        kind=kind,
        text=clean_text(text, 1000, "text"),
        query=clean_text(query, 200, "query"),
        owner=owner,
        by=person.username,
    )
    session.add(row)
    audit(
        session, person.username, "kb.feedback", target=f"kb:{article_id or ''}", role=person.role, kind=kind
    )
    return row


def note_miss(session: Session, query: str, seat: str) -> None:
    """A search that found nothing: kept for managers (gaps to write)."""
    query = query.strip()[:200]
    if query:
        session.add(SearchMiss(query=query, seat=seat[:64]))


# --- what managers see ------------------------------------------------------------------------


def most_used(session: Session, since: datetime, limit: int = 20) -> list[tuple[Article, int]]:
    """Articles by the calls they answered since ``since``, most first."""
    uses = func.count(col(Use.id)).label("n")
    rows = session.exec(
        select(Article, uses)
        .join(Use, col(Use.article_id) == col(Article.id))
        .where(col(Use.at) >= since)
        .group_by(col(Article.id))
        .order_by(uses.desc(), col(Article.id))
        .limit(limit)
    ).all()
    return [(a, int(n)) for a, n in rows]


def misses(session: Session, since: datetime, limit: int = 50) -> list[tuple[str, int]]:
    """Searches that found nothing since ``since``, the most asked first: articles to write."""
    n = func.count(col(SearchMiss.id)).label("n")
    rows = session.exec(
        select(SearchMiss.query, n)
        .where(col(SearchMiss.at) >= since)
        .group_by(col(SearchMiss.query))
        .order_by(n.desc(), col(SearchMiss.query))
        .limit(limit)
    ).all()
    return [(q, int(c)) for q, c in rows]


def by_status(session: Session, status: str, limit: int = 200) -> list[Article]:
    q = select(Article).where(Article.status == status).order_by(col(Article.updated_at).desc())
    return list(session.exec(q.limit(limit)))


def open_feedback(session: Session, owner: str = "", limit: int = 200) -> list[Feedback]:
    q = select(Feedback).where(col(Feedback.resolved).is_(False))
    if owner:
        q = q.where(Feedback.owner == owner)
    return list(session.exec(q.order_by(col(Feedback.at).desc()).limit(limit)))


def uses_since(session: Session, since: datetime) -> int:
    return int(session.exec(select(func.count(col(Use.id))).where(col(Use.at) >= since)).one())
