"""Articles in and out of Excel: the sheets offices keep today come in as drafts (to be reviewed
before seats see them), all or nothing, with a row-by-row report; the export writes the same
columns, so an exported sheet imports again."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from callcenter.directory.imports import Columns, Report, RowError, read_table, run_rows
from callcenter.knowledge import service
from callcenter.knowledge.models import Article

# field → accepted headings (the export's heading first, then the names offices use)
COLUMNS: Columns = {
    "title": ("标题", "title", "知识标题", "事项名称"),
    "questions": ("问法", "questions", "标准问", "相似问法", "常见问法"),
    "spoken": ("答复口径", "spoken", "口径", "简要答复"),
    "answer": ("答复全文", "answer", "答复内容", "详细内容"),
    "keywords": ("关键词", "keywords"),
    "category": ("分类", "category", "分类代码", "类别"),
    "owner_office": ("来源单位", "owner_office", "责任单位"),
    "owner": ("负责人账号", "owner"),
    "source_doc": ("依据文件", "source_doc", "文件名称"),
    "source_number": ("文号", "source_number"),
    "valid_from": ("生效日期", "valid_from"),
    "valid_until": ("失效日期", "valid_until"),
}
REQUIRED = ("title",)
FORMULA = "=+-@"  # what makes a cell a formula in Excel
EXPORT_EXTRA = (("状态", "status"), ("版本", "version"), ("编号", "id"))


def _questions(value: str) -> str:
    """Question forms one a line; offices also separate them with ； or ｜."""
    for sep in ("；", ";", "｜", "|"):
        value = value.replace(sep, "\n")
    return value


def import_articles(
    session: Session,
    person: service.Person,
    filename: str,
    data: bytes,
    categories: dict[str, int],
) -> Report:
    """Every row a draft by ``person`` (an editor), or, if any row is wrong, none (the report
    says which rows and why). ``categories``: category id by code and by name."""
    rows = read_table(filename, data)
    if service.KbRole.EDITOR.value not in service.roles_of(session, person):
        raise service.KnowledgeError("the editor role is needed", "forbidden")

    def build(_row_no: int, f: dict[str, str]) -> list[Any]:
        category = f["category"].strip()
        if category and category not in categories:
            raise RowError(f"unknown category {category!r}")
        # The export's quote before text that would be a formula comes off again.
        f = {k: v[1:] if v[:1] == "'" and v[1:2] and v[1] in FORMULA else v for k, v in f.items()}
        data: dict[str, Any] = {k: v for k, v in f.items() if k != "category"}
        data["questions"] = _questions(f["questions"])
        data["category_id"] = categories.get(category) if category else None
        try:
            service.create(session, person, data)
        except service.KnowledgeError as exc:
            raise RowError(str(exc)) from None
        return []

    return run_rows(session, "knowledge", COLUMNS, REQUIRED, rows, build)


def export_articles(
    session: Session, status: str = "", category_names: dict[int, str] | None = None
) -> bytes:
    """The articles (of one status, or all) as an .xlsx with the import's headings."""
    from openpyxl import Workbook  # heavy: loaded only when a sheet is written

    names = category_names or {}
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("知识库")
    fields = list(COLUMNS)
    ws.append([COLUMNS[f][0] for f in fields] + [h for h, _ in EXPORT_EXTRA])
    q = select(Article)
    if status:
        q = q.where(Article.status == status)
    for a in session.exec(q.order_by(col(Article.id))):
        row: list[Any] = []
        for f in fields:
            if f == "category":
                row.append(names.get(a.category_id, "") if a.category_id else "")
            elif f == "questions":
                row.append("；".join(a.questions.splitlines()))
            else:
                value = getattr(a, f)
                row.append(value.isoformat() if isinstance(value, date) else value)
        row += [a.status, a.version, a.id]
        # A cell starting with = + - @ would be a formula in Excel: written as text.
        ws.append([("'" + v) if isinstance(v, str) and v and v[0] in FORMULA else v for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
