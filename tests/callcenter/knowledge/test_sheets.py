"""Articles from an office's Excel sheet: drafts, all or nothing, a report row by row; the export
reads back in; the demo's articles load with the product's demo."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import func, select

from callcenter.database import session_scope
from callcenter.directory.imports import ImportFileError
from callcenter.knowledge import search, service, sheets
from callcenter.knowledge.models import Article, ArticleStatus
from callcenter.knowledge.service import KnowledgeError, Person
from dispatch.models import Category

EDITOR = Person("admin", "admin")
CATEGORIES = {"AFFAIRS-AID": 1, "低保救助": 1}


@pytest.fixture(autouse=True)
def _category(settings):
    with session_scope(settings) as s:
        s.add(Category(id=1, code="AFFAIRS-AID", name="低保救助"))
        s.commit()


def xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


HEAD = ["事项名称", "常见问法", "答复口径", "答复内容", "关键词", "类别", "责任单位", "文号", "失效日期"]


def count(s) -> int:
    return s.exec(select(func.count()).select_from(Article)).one()


def test_a_good_sheet_imports_as_drafts(settings):
    data = xlsx(
        [
            HEAD,
            [
                "低保申请",
                "低保怎么申请；低保要什么材料",
                "向街道申请。",
                "带身份证户口簿。",
                "低保",
                "低保救助",
                "安宁区民政局",
                "安民发〔2026〕12号",
                "2027-12-31",
            ],
            [],  # a blank row is skipped
            [
                "临时救助",
                "突发困难怎么办",
                "向街道申请临时救助。",
                "",
                "",
                "AFFAIRS-AID",
                "安宁区民政局",
                "",
                "",
            ],
        ]
    )
    with session_scope(settings) as s:
        report = sheets.import_articles(s, EDITOR, "知识库.xlsx", data, CATEGORIES)
        assert report.ok and report.imported == 2 and report.total == 2
        arts = list(s.exec(select(Article).order_by(Article.id)))
        assert [a.status for a in arts] == [ArticleStatus.DRAFT] * 2
        assert arts[0].questions == "低保怎么申请\n低保要什么材料" and arts[0].category_id == 1
        assert str(arts[0].valid_until) == "2027-12-31" and arts[0].source_number == "安民发〔2026〕12号"
        assert search.search(s, "低保") == []  # drafts are not found until reviewed and published


def test_a_bad_row_imports_nothing_and_is_reported(settings):
    data = xlsx(
        [
            HEAD,
            ["低保申请", "", "向街道申请。", "", "", "", "", "", ""],
            ["", "没有标题", "答复", "", "", "", "", "", ""],
            ["高龄补贴", "", "到社区申请。", "", "", "不存在的分类", "", "", ""],
            ["残疾证", "", "到残联。", "", "", "", "", "", "明年"],
            ['=HYPERLINK("http://x")', "", "答。", "", "", "", "", "", ""],  # a formula is no title
        ]
    )
    with session_scope(settings) as s:
        report = sheets.import_articles(s, EDITOR, "k.xlsx", data, CATEGORIES)
        assert not report.ok and report.imported == 0
        assert [r for r, _ in report.errors] == [3, 4, 5, 6]
        assert "title" in report.errors[0][1] and "category" in report.errors[1][1]
        assert "date" in report.errors[2][1] and "title" in report.errors[3][1]
        assert count(s) == 0


def test_refusals(settings):
    with session_scope(settings) as s:
        with pytest.raises(ImportFileError):
            sheets.import_articles(s, EDITOR, "k.xlsx", b"PK not a zip", CATEGORIES)
        with pytest.raises(ImportFileError):
            sheets.import_articles(s, EDITOR, "k.exe", b"x", CATEGORIES)
        with pytest.raises(ImportFileError):  # no title column
            sheets.import_articles(s, EDITOR, "k.xlsx", xlsx([["答复口径"], ["x"]]), CATEGORIES)
        with pytest.raises(KnowledgeError):
            sheets.import_articles(s, Person("seat1", "seat"), "k.xlsx", xlsx([HEAD]), CATEGORIES)


def test_export_reads_back_in(settings, tmp_path):
    with session_scope(settings) as s:
        a = service.create(
            s,
            EDITOR,
            {
                "title": "=1+1 公式",
                "questions": "问一\n问二",
                "spoken": "答。",
                "category_id": None,
                "valid_until": "2027-01-31",
            },
        )
        service.create(s, EDITOR, {"title": "低保申请", "spoken": "向街道申请。", "category_id": 1})
        s.commit()
        data = sheets.export_articles(s, category_names={1: "低保救助"})
        ws = load_workbook(io.BytesIO(data)).active
        rows = [[c.value for c in r] for r in ws.iter_rows()]
        assert rows[0][:3] == ["标题", "问法", "答复口径"]
        assert rows[1][0] == "'=1+1 公式" and rows[1][1] == "问一；问二" and rows[2][5] == "低保救助"
        assert rows[1][-3:] == ["draft", 1, a.id]
    with session_scope(settings) as s:
        again = sheets.import_articles(s, EDITOR, "export.xlsx", data, CATEGORIES)
        assert again.ok and again.imported == 2 and count(s) == 4
        copy = s.exec(select(Article).order_by(Article.id.desc())).first()
        assert copy.title == "低保申请" and copy.category_id == 1
        assert s.get(Article, copy.id - 1).title == "=1+1 公式"
