"""The knowledge base on the web: the seat's search (per keystroke) and the suggestions for a
ringing call, an article's answer, "answered with this article" (a 直接答复 order through the
order flows), "wrong or missing" feedback, the editors' lifecycle API, and the managers' page
(most used, searches that found nothing, expired and expiring articles, feedback, Excel import
and export). Access: ``access.ROUTE_ROLES``; the knowledge-base roles (editor, reviewer) are
checked by ``callcenter.knowledge.service``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import File, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account
from callcenter.clock import china_now, local_day, utcnow
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.imports import MAX_BYTES, ImportFileError, check_xlsx
from callcenter.errors import UserError
from callcenter.knowledge import attachments, search, service, sheets
from callcenter.knowledge.models import Article, ArticleStatus, KbRole, Synonym
from callcenter.residents.models import Resident
from dispatch.actors import Actor
from dispatch.flows import Caller, Requester, answer_with_article
from dispatch.models import Category, OrderHistory, WorkOrder
from web_console.deps import CsrfChecked, CurrentAccount, SettingsDep, open_db, protected_router
from web_console.render import render, show_errors_on
from web_console.sessions import client_ip

router = protected_router()

# A row id in a path: an integer the database can hold (a larger one is a 422, not a 500).
ArticleId = Annotated[int, Path(ge=1, le=2**31 - 1)]

MAX_RESULTS = 10
RECENT_ORDERS = 3
MAX_IMPORT = 10 * 1024 * 1024


def _person(request: Request, account: Account) -> service.Person:
    return service.Person(account.username, account.role, client_ip(request))


def _category_names(db: Session) -> dict[int, str]:
    return {c.id: c.name for c in db.exec(select(Category)) if c.id is not None}


def _item(a: Article, names: dict[int, str], score: float | None = None) -> dict[str, Any]:
    return {
        "id": a.id,
        "title": a.title,
        "spoken": a.spoken,
        "category": names.get(a.category_id, "") if a.category_id else "",
        "owner_office": a.owner_office,
        "source": " ".join(x for x in (a.source_doc, a.source_number) if x and not x.startswith("DEMO-")),
        "valid_until": a.valid_until.isoformat() if a.valid_until else None,
        "version": a.version,
        "status": a.status,
        "demo": a.demo,
        **({"score": round(score, 3)} if score is not None else {}),
    }


def _items(db: Session, hits: list[search.Hit]) -> list[dict[str, Any]]:
    names = _category_names(db)
    by_id = {
        a.id: a for a in db.exec(select(Article).where(col(Article.id).in_([h.article_id for h in hits])))
    }
    return [_item(by_id[h.article_id], names, h.score) for h in hits if h.article_id in by_id]


def _search(settings: Settings, q: str, typing: bool, category_id: int | None, seat: str) -> list[dict]:
    with session_scope(settings) as db:
        hits = search.search(db, q, limit=MAX_RESULTS, typing=typing, category_id=category_id)
        if not hits and not typing:
            service.note_miss(db, q, seat)
            db.commit()
        return _items(db, hits)


@router.get("/api/kb/search")
async def api_kb_search(
    account: CurrentAccount,
    settings: SettingsDep,
    q: str = Query("", max_length=100),
    typing: bool = Query(False),
    category_id: int | None = Query(None, ge=1, le=2**31 - 1),
) -> JSONResponse:
    """Published articles for a question, best first. ``typing``: the seat is still typing (the
    last word may be unfinished; a search that finds nothing is not noted as a gap)."""
    items = await run_in_threadpool(_search, settings, q, typing, category_id, account.username)
    return JSONResponse(items, headers={"Cache-Control": "no-store"})


def _suggest(settings: Settings, ivr_category: str, resident_id: int | None) -> list[dict]:
    with session_scope(settings) as db:
        texts = [ivr_category]
        cats: set[int] = set()
        if ivr_category:
            top = db.exec(select(Category).where(Category.name == ivr_category)).first()
            if top is not None and top.id is not None:
                cats = {top.id} | {
                    c.id for c in db.exec(select(Category).where(Category.parent_id == top.id)) if c.id
                }
        if resident_id is not None:
            recent = db.exec(
                select(WorkOrder.category, WorkOrder.summary)
                .where(WorkOrder.resident_id == resident_id)
                .order_by(col(WorkOrder.created_at).desc())
                .limit(RECENT_ORDERS)
            ).all()
            texts += [f"{c} {s[:30]}" for c, s in recent]
        return _items(db, search.suggest(db, texts, cats))


@router.get("/api/kb/suggest")
async def api_kb_suggest(
    account: CurrentAccount,
    settings: SettingsDep,
    ivr_category: str = Query("", max_length=64),
    resident_id: int | None = Query(None, ge=1, le=2**31 - 1),
) -> JSONResponse:
    """Articles for a ringing call: from the voice-menu choice and the caller's recent orders."""
    items = await run_in_threadpool(_suggest, settings, ivr_category.strip(), resident_id)
    return JSONResponse(items, headers={"Cache-Control": "no-store"})


@router.get("/api/kb/articles/{article_id}")
def api_kb_article(request: Request, article_id: ArticleId, account: CurrentAccount) -> JSONResponse:
    """One article in full; seats see published ones, editors and reviewers every one."""
    with open_db(request) as db:
        a = service.get(db, article_id)
        if a.status != ArticleStatus.PUBLISHED and not service.roles_of(db, _person(request, account)):
            raise service.KnowledgeError("no such article", "not_found")
        body = _item(a, _category_names(db))
        body.update(
            questions=a.questions.splitlines(),
            answer=a.answer,
            keywords=a.keywords,
            attachments=a.attachments,
            valid_from=a.valid_from.isoformat() if a.valid_from else None,
            uses=a.uses,
        )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


class Answered(BaseModel):
    article_id: int = Field(ge=1, le=2**31 - 1)
    linkedid: str = Field(default="", max_length=64)
    resident_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    caller_phone: str = Field(default="", max_length=40)
    caller_name: str = Field(default="", max_length=64)
    summary: str = Field(default="", max_length=1000)


def _answered(settings: Settings, account: Account, ip: str, body: Answered) -> dict[str, Any]:
    with session_scope(settings) as db:
        resident_id = body.resident_id if body.resident_id and db.get(Resident, body.resident_id) else None
        order = answer_with_article(
            db,
            settings,
            body.article_id,
            Actor.of(account),
            Requester(account.username, account.role, ip, "web"),
            Caller(body.linkedid, resident_id, body.caller_phone, body.caller_name),
            body.summary,
        )
        db.commit()
        return {"id": order.id, "number": order.number, "status": order.status, "article_id": body.article_id}


@router.post("/api/kb/answer", dependencies=[CsrfChecked])
async def api_kb_answer(
    request: Request, body: Answered, account: CurrentAccount, settings: SettingsDep
) -> Response:
    """Answered with this article: a 咨询 order closed by 直接答复, linked to the article."""
    view = await run_in_threadpool(_answered, settings, account, client_ip(request), body)
    return JSONResponse(view, status_code=201)


class FeedbackIn(BaseModel):
    article_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    kind: Literal["wrong", "missing"]
    text: str = Field(default="", max_length=1000)
    query: str = Field(default="", max_length=200)


@router.post("/api/kb/feedback", dependencies=[CsrfChecked])
def api_kb_feedback(request: Request, body: FeedbackIn, account: CurrentAccount) -> Response:
    """The answer was wrong, or none was found: for the article's owner (and the managers)."""
    with open_db(request) as db:
        row = service.feedback(
            db, _person(request, account), body.article_id, body.kind, body.text, body.query
        )
        db.commit()
        return JSONResponse({"id": row.id, "owner": row.owner}, status_code=201)


# --- the editors' lifecycle API -------------------------------------------------------------


class ArticleIn(BaseModel):
    title: str = Field(max_length=200)
    questions: str = Field(default="", max_length=4000)
    spoken: str = Field(default="", max_length=500)
    answer: str = Field(default="", max_length=8000)
    keywords: str = Field(default="", max_length=500)
    category_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    owner_office: str = Field(default="", max_length=64)
    owner: str = Field(default="", max_length=64)
    source_doc: str = Field(default="", max_length=200)
    source_number: str = Field(default="", max_length=64)
    valid_from: str = Field(default="", max_length=10)
    valid_until: str = Field(default="", max_length=10)


@router.post("/api/kb/articles", dependencies=[CsrfChecked])
def api_kb_create(request: Request, body: ArticleIn, account: CurrentAccount) -> Response:
    with open_db(request) as db:
        a = service.create(db, _person(request, account), body.model_dump())
        db.commit()
        return JSONResponse(_item(a, _category_names(db)), status_code=201)


@router.post("/api/kb/articles/{article_id}", dependencies=[CsrfChecked])
def api_kb_edit(
    request: Request, article_id: ArticleId, body: ArticleIn, account: CurrentAccount
) -> Response:
    with open_db(request) as db:
        a = service.edit(db, _person(request, account), article_id, body.model_dump())
        db.commit()
        return JSONResponse(_item(a, _category_names(db)))


class StepIn(BaseModel):
    note: str = Field(default="", max_length=500)


@router.post("/api/kb/articles/{article_id}/{step}", dependencies=[CsrfChecked])
def api_kb_step(
    request: Request,
    article_id: ArticleId,
    step: Literal["review", "send_back", "publish", "expire"],
    body: StepIn,
    account: CurrentAccount,
    settings: SettingsDep,
) -> Response:
    """A lifecycle step: review, send back, publish, expire (reviewers)."""
    person = _person(request, account)
    with open_db(request) as db:
        if step == "review":
            a = service.review(db, person, article_id, body.note)
        elif step == "send_back":
            a = service.send_back(db, person, article_id, body.note)
        elif step == "publish":
            a = service.publish(db, person, article_id, china_now(settings).date())
        else:
            a = service.expire(db, person, article_id, body.note)
        db.commit()
        return JSONResponse(_item(a, _category_names(db)))


class SynonymsIn(BaseModel):
    words: list[str] = Field(min_length=2, max_length=20)


@router.get("/api/kb/synonyms")
def api_kb_synonyms(request: Request, account: CurrentAccount) -> JSONResponse:
    """The synonym groups search expands a word with (低保 = 最低生活保障 …)."""
    with open_db(request) as db:
        rows = db.exec(select(Synonym).order_by(col(Synonym.id))).all()
        return JSONResponse([{"id": r.id, "words": r.words.split(",")} for r in rows])


@router.post("/api/kb/synonyms", dependencies=[CsrfChecked])
def api_kb_synonyms_add(request: Request, body: SynonymsIn, account: CurrentAccount) -> Response:
    """A new synonym group (editors); the index is cut anew with its words."""
    with open_db(request) as db:
        row = service.add_synonyms(db, _person(request, account), body.words)
        db.commit()
        return JSONResponse({"id": row.id, "words": row.words.split(",")}, status_code=201)


# --- the managers' page ---------------------------------------------------------------------


def _page_data(db: Session, settings: Settings) -> dict[str, Any]:
    since = utcnow() - timedelta(days=30)
    today = china_now(settings).date()
    asked = db.exec(
        select(func.count(col(WorkOrder.id))).where(
            WorkOrder.order_type == "咨询", col(WorkOrder.created_at) >= since
        )
    ).one()
    answered = db.exec(
        select(func.count(func.distinct(OrderHistory.order_id)))
        .join(WorkOrder, col(WorkOrder.id) == col(OrderHistory.order_id))
        .where(
            WorkOrder.order_type == "咨询",
            OrderHistory.action == "直接答复",
            col(WorkOrder.created_at) >= since,
        )
    ).one()
    published = db.exec(
        select(func.count(col(Article.id))).where(Article.status == ArticleStatus.PUBLISHED.value)
    ).one()
    return {
        "most_used": service.most_used(db, since),
        "misses": service.misses(db, since),
        "expired": service.by_status(db, ArticleStatus.EXPIRED.value),
        "expiring": service.expiring(db, today, 30),
        "waiting": service.by_status(db, ArticleStatus.DRAFT.value)
        + service.by_status(db, ArticleStatus.REVIEWED.value),
        "feedback": service.open_feedback(db),
        "figures": {
            "published": int(published),
            "uses": service.uses_since(db, since),
            "asked": int(asked),
            "answered": int(answered),
            "answered_share": round(100.0 * answered / asked, 1) if asked else None,
        },
        "day": local_day,
    }


@router.get("/kb")
def kb_page(request: Request, account: CurrentAccount, settings: SettingsDep) -> Response:
    with open_db(request) as db:
        data = _page_data(db, settings)
        return render(request, "kb.html", account=account, report=None, **data)


@router.get("/kb/export")
def kb_export(request: Request, account: CurrentAccount, status: str = Query("", max_length=16)) -> Response:
    if status and status not in {s.value for s in ArticleStatus}:
        raise service.KnowledgeError(f"unknown status {status!r}")
    with open_db(request) as db:
        data = sheets.export_articles(db, status, _category_names(db))
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="knowledge.xlsx"', "Cache-Control": "no-store"},
    )


def _import(settings: Settings, person: service.Person, filename: str, data: bytes) -> dict[str, Any]:
    with session_scope(settings) as db:
        cats: dict[str, int] = {}
        for c in db.exec(select(Category)):
            if c.id is not None:
                cats[c.code] = c.id
                cats.setdefault(c.name, c.id)
        report = sheets.import_articles(db, person, filename, data, cats)
        return report.as_dict()


@router.post("/kb/import", dependencies=[CsrfChecked])
async def kb_import(
    request: Request,
    account: CurrentAccount,
    settings: SettingsDep,
    file: UploadFile | None = File(None),
) -> Response:
    """An office's sheet: drafts, all or nothing; the page shows the report row by row."""
    if file is None or not file.filename:
        raise ImportFileError("choose a file")
    data = await file.read(min(MAX_IMPORT, MAX_BYTES) + 1)
    if len(data) > min(MAX_IMPORT, MAX_BYTES):
        raise ImportFileError("file too large")
    if file.filename.lower().endswith(".xlsx"):
        await run_in_threadpool(check_xlsx, data)
    report = await run_in_threadpool(_import, settings, _person(request, account), file.filename[:200], data)
    with open_db(request) as db:
        page = _page_data(db, settings)
    return render(
        request, "kb.html", account=account, report=report, status_code=200 if report["ok"] else 422, **page
    )


# --- the editors' and reviewers' pages -------------------------------------------------------

FORM_FIELDS = (*service.CONTENT_FIELDS, "category_id", "valid_from", "valid_until")
STEPS = ("review", "send_back", "publish", "expire")


def _form_of(a: Article) -> dict[str, str]:
    out = {f: str(getattr(a, f) or "") for f in service.CONTENT_FIELDS}
    out["category_id"] = str(a.category_id or "")
    out["valid_from"] = a.valid_from.isoformat() if a.valid_from else ""
    out["valid_until"] = a.valid_until.isoformat() if a.valid_until else ""
    return out


def _editor_page(
    request: Request,
    account: Account,
    article_id: int | None,
    form: dict[str, str] | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    with open_db(request) as db:
        roles = service.roles_of(db, _person(request, account))
        article = service.get(db, article_id) if article_id is not None else None
        if not roles and article is not None and article.status != ArticleStatus.PUBLISHED:
            raise service.KnowledgeError("no such article", "not_found")
        versions = service.versions(db, article_id) if article_id is not None else []
        cats = db.exec(select(Category).order_by(col(Category.code))).all()
        if form is None:
            form = _form_of(article) if article is not None else {f: "" for f in FORM_FIELDS}
        return render(
            request,
            "kb_article.html",
            status_code=status_code,
            account=account,
            article=article,
            form=form,
            roles=roles,
            categories=cats,
            versions=versions,
            error=error,
            steps=STEPS,
            day=local_day,
            max_mb=attachments.MAX_BYTES // (1024 * 1024),
        )


@router.get("/kb/articles")
def kb_articles(
    request: Request,
    account: CurrentAccount,
    settings: SettingsDep,
    status: str = Query("", max_length=16),
    q: str = Query("", max_length=100),
) -> Response:
    """The articles editors and reviewers work on, by status or title."""
    with open_db(request) as db:
        roles = service.roles_of(db, _person(request, account))
        stmt = select(Article).order_by(col(Article.updated_at).desc(), col(Article.id).desc()).limit(200)
        if not roles:  # seats without a knowledge-base role read the published articles
            status = ArticleStatus.PUBLISHED.value
        if status in {s.value for s in ArticleStatus}:
            stmt = stmt.where(Article.status == status)
        if q.strip():
            stmt = stmt.where(col(Article.title).contains(q.strip()))
        rows = db.exec(stmt).all()
        # The owner's own articles that lapse within 30 days, above the list (timely updates).
        mine = service.expiring(db, china_now(settings).date(), 30, owner=account.username)
        # Seats' "wrong or missing" reports on the owner's articles.
        told = service.open_feedback(db, owner=account.username, limit=50)
        return render(
            request,
            "kb_articles.html",
            account=account,
            articles=rows,
            status=status,
            q=q,
            roles=roles,
            mine=mine,
            told=told,
            day=local_day,
        )


def _form(raw: Any) -> dict[str, str]:
    return {
        f: str(raw.get(f, ""))[: service.CONTENT_FIELDS.get(f, 10)]
        for f in FORM_FIELDS
        if isinstance(raw.get(f, ""), str)
    }


@router.get("/kb/articles/new")
def kb_article_new(request: Request, account: CurrentAccount) -> Response:
    with open_db(request) as db:
        if KbRole.EDITOR.value not in service.roles_of(db, _person(request, account)):
            return RedirectResponse("/kb/articles", status_code=303)
    return _editor_page(request, account, None)


@router.post("/kb/articles/new", dependencies=[CsrfChecked])
async def kb_article_create(request: Request, account: CurrentAccount) -> Response:
    form = _form(await request.form())

    def refused(exc: UserError, message: str) -> Response:
        if exc.code == "forbidden":
            return render(request, "error.html", status_code=exc.status)
        return _editor_page(request, account, None, form, message, exc.status)

    show_errors_on(request, refused)
    if not form.get("title", "").strip():
        raise service.KnowledgeError("title: required")
    with open_db(request) as db:
        a = service.create(db, _person(request, account), dict(form))
        db.commit()
        return RedirectResponse(f"/kb/articles/{a.id}", status_code=303)


@router.get("/kb/articles/{article_id}")
def kb_article_page(request: Request, article_id: ArticleId, account: CurrentAccount) -> Response:
    return _editor_page(request, account, article_id)


@router.post("/kb/articles/{article_id}", dependencies=[CsrfChecked])
async def kb_article_save(request: Request, article_id: ArticleId, account: CurrentAccount) -> Response:
    """A new version (back to draft: reviewed and published again before seats see it)."""
    form = _form(await request.form())

    def refused(exc: UserError, message: str) -> Response:
        if exc.code in ("not_found", "forbidden"):
            return render(request, "error.html", status_code=exc.status)
        return _editor_page(request, account, article_id, form, message, exc.status)

    show_errors_on(request, refused)
    with open_db(request) as db:
        service.edit(db, _person(request, account), article_id, dict(form))
        db.commit()
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


@router.post("/kb/articles/{article_id}/step", dependencies=[CsrfChecked])
async def kb_article_step(
    request: Request, article_id: ArticleId, account: CurrentAccount, settings: SettingsDep
) -> Response:
    raw = await request.form()
    step = str(raw.get("step", ""))[:16]
    note = str(raw.get("note", ""))[:500]

    def refused(exc: UserError, message: str) -> Response:
        if exc.code in ("not_found", "forbidden"):
            return render(request, "error.html", status_code=exc.status)
        return _editor_page(request, account, article_id, None, message, exc.status)

    show_errors_on(request, refused)
    if step not in STEPS:
        raise service.KnowledgeError(f"unknown step {step!r}")
    person = _person(request, account)
    with open_db(request) as db:
        if step == "review":
            service.review(db, person, article_id, note)
        elif step == "send_back":
            service.send_back(db, person, article_id, note)
        elif step == "publish":
            service.publish(db, person, article_id, china_now(settings).date())
        elif step == "expire":
            service.expire(db, person, article_id, note)
        else:
            raise service.KnowledgeError(f"unknown step {step!r}")
        db.commit()
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


@router.post("/kb/articles/{article_id}/attachments", dependencies=[CsrfChecked])
async def kb_attachment_upload(
    request: Request,
    article_id: ArticleId,
    account: CurrentAccount,
    settings: SettingsDep,
    file: UploadFile | None = File(None),
) -> Response:
    """One file for the article (editors): PDF, image, Word or Excel, up to 5 MB."""

    def refused(exc: UserError, message: str) -> Response:
        if exc.code in ("not_found", "forbidden"):
            return render(request, "error.html", status_code=exc.status)
        return _editor_page(request, account, article_id, None, message, exc.status)

    show_errors_on(request, refused)
    if file is None or not file.filename:
        raise service.KnowledgeError("choose a file")
    data = await file.read(attachments.MAX_BYTES + 1)
    with open_db(request) as db:
        attachments.add(db, settings, _person(request, account), article_id, file.filename, data)
        db.commit()
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


@router.post("/kb/articles/{article_id}/attachments/{file_id}/remove", dependencies=[CsrfChecked])
def kb_attachment_remove(
    request: Request,
    article_id: ArticleId,
    file_id: Annotated[str, Path(max_length=40)],
    account: CurrentAccount,
) -> Response:
    def refused(exc: UserError, message: str) -> Response:
        if exc.code in ("not_found", "forbidden"):
            return render(request, "error.html", status_code=exc.status)
        return _editor_page(request, account, article_id, None, message, exc.status)

    show_errors_on(request, refused)
    with open_db(request) as db:
        attachments.remove(db, _person(request, account), article_id, file_id)
        db.commit()
    return RedirectResponse(f"/kb/articles/{article_id}", status_code=303)


@router.get("/kb/articles/{article_id}/attachments/{file_id}")
def kb_attachment(
    request: Request,
    article_id: ArticleId,
    file_id: Annotated[str, Path(max_length=40)],
    account: CurrentAccount,
    settings: SettingsDep,
) -> Response:
    """A signed-in seat opens the files of a published article; editors and reviewers any."""
    with open_db(request) as db:
        a = db.get(Article, article_id)
        if a is None or (
            a.status != ArticleStatus.PUBLISHED and not service.roles_of(db, _person(request, account))
        ):
            return render(request, "error.html", status_code=404)
        try:
            path, entry = attachments.find(settings, a, file_id)
        except service.KnowledgeError:
            return render(request, "error.html", status_code=404)
    return FileResponse(
        path,
        media_type=entry["type"],
        filename=entry["name"],
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
