"""Spreadsheets in and out: a zip-bomb .xlsx is refused before openpyxl inflates it, imports wait
on a bounded pool, report exports are capped and streamed, and no exported cell can start a
formula (= + - @, TAB, CR)."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.directory import imports
from callcenter.directory.models import Jurisdiction


def _zip_bomb() -> bytes:
    """A valid workbook whose shared strings inflate to 65 MB (from well under 1 MB)."""
    wb = Workbook()
    wb.active.append(["名称", "代码"])
    wb.active.append(["十里店街道", "620105001"])
    plain = io.BytesIO()
    wb.save(plain)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            if item.filename != "xl/sharedStrings.xml":
                dst.writestr(item, src.read(item.filename))
        with dst.open("xl/sharedStrings.xml", "w") as fh:
            fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            chunk = b"<si><t>x</t></si>" * 65536
            for _ in range(65 * 1024 * 1024 // len(chunk) + 1):
                fh.write(chunk)
            fh.write(b"</sst>")
    data = out.getvalue()
    assert len(data) < imports.MAX_BYTES // 10
    return data


def _admin(web, app):
    c = web.TestClient(app)
    c.__enter__()
    assert web.login(c, "admin").status_code == 303
    return c, web.csrf(c.get("/admin/basic").text)


def test_a_zip_bomb_is_refused_at_upload_with_a_clear_error(db, app, web):
    bomb = _zip_bomb()
    with pytest.raises(imports.ImportFileError, match="unpacks to more than"):
        imports.read_table("bomb.xlsx", bomb)
    c, token = _admin(web, app)
    r = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "jurisdictions"},
        files={"file": ("bomb.xlsx", bomb, "application/octet-stream")},
        follow_redirects=False,
    )
    assert r.status_code == 422 and "文件无法导入" in r.text and "MB" in r.text
    broken = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "jurisdictions"},
        files={"file": ("x.xlsx", b"PK not a zip", "application/octet-stream")},
        follow_redirects=False,
    )
    assert broken.status_code == 422
    with session_scope(db) as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "basic.import")).all() == []


def test_imports_wait_on_a_bounded_pool(db, app, web):
    from web_console import basic_data

    c, token = _admin(web, app)
    taken = 0
    while basic_data._IMPORT_SLOTS.acquire(blocking=False):  # every slot busy
        taken += 1
    try:
        assert taken == basic_data.IMPORT_WORKERS + basic_data.IMPORT_QUEUE
        r = c.post(
            "/admin/import",
            data={"csrf": token, "kind": "jurisdictions"},
            files={"file": ("j.csv", "名称\n甲街道\n".encode(), "text/csv")},
            follow_redirects=False,
        )
        assert r.status_code == 429 and "导入排队已满" in r.text
    finally:
        for _ in range(taken):
            basic_data._IMPORT_SLOTS.release()
    r = c.post(
        "/admin/import",
        data={"csrf": token, "kind": "jurisdictions"},
        files={"file": ("j.csv", "名称\n甲街道\n".encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_an_exported_cell_starting_with_tab_or_cr_is_not_a_formula(db, app, web):
    from callcenter.statistics.exports import safe_cell

    with session_scope(db) as s:  # as a record could hold them (written around the forms)
        for name in ("\t=HYPERLINK(1)", "\r@SUM(1)", "+1", "-1", "十里店街道"):
            s.add(Jurisdiction(name=name))
        s.commit()
    c, _ = _admin(web, app)
    r = c.get("/admin/basic/jurisdictions/export")
    assert r.status_code == 200
    names = [
        row[0] for row in load_workbook(io.BytesIO(r.content)).active.iter_rows(min_row=2, values_only=True)
    ]
    # (XML reads a CR back as LF: what matters is the quote before it.)
    assert sorted(names) == sorted(["'\t=HYPERLINK(1)", "'\n@SUM(1)", "'+1", "'-1", "十里店街道"])
    assert [safe_cell(v) for v in ("\tx", "\rx", "=x", "@x", "x", 1)] == [
        "'\tx",
        "'\rx",
        "'=x",
        "'@x",
        "x",
        1,
    ]


def test_report_exports_are_capped_and_streamed(db, app, web):
    c = web.TestClient(app)
    c.__enter__()
    assert web.login(c, "super").status_code == 303
    too_long = c.get("/reports/export?format=xlsx&start=2026-01-01&end=2026-04-04")  # 94 days
    assert too_long.status_code == 422 and "93" in too_long.json()["detail"]
    r = c.get("/reports/export?format=xlsx&start=2026-01-01&end=2026-04-03")  # 93 days
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert int(r.headers["content-length"]) == len(r.content)
    assert len(load_workbook(io.BytesIO(r.content)).worksheets) == 2
