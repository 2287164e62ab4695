"""The knowledge base on the web: the seat's search and suggestions, "answered with this article"
(a 直接答复 order linked to the article), feedback, the editors' lifecycle API with its roles,
the managers' page, Excel import and export."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from callcenter.clock import china_now
from callcenter.database import session_scope
from callcenter.knowledge.models import Article, Feedback, SearchMiss, Use
from dispatch.models import OrderHistory, Status, WorkOrder
from tests.callcenter.knowledge import labelled


@pytest.fixture
def kb(db):
    with session_scope(db) as s:
        return labelled.load_demo(s)


def login(client, web, who: str) -> str:
    assert web.login(client, who).status_code == 303
    page = "/console" if who.startswith("seat") else "/kb"
    return web.csrf(client.get(page).text)


def test_seat_searches_answers_and_reports(db, client, web, kb):
    token = login(client, web, "seat1001")
    page = client.get("/console").text
    assert 'id="kb-panel"' in page and "knowledge.js" in page
    hits = client.get("/api/kb/search", params={"q": "低保怎么申请"}).json()
    assert hits[0]["id"] == kb["dibao-apply"] and "街道" in hits[0]["spoken"]
    assert (
        client.get("/api/kb/search", params={"q": "dib", "typing": "true"})
        .json()[0]["title"]
        .startswith(("最低", "低保"))
    )
    assert client.get("/api/kb/search", params={"q": "航天飞船", "typing": "true"}).json() == []
    assert client.get("/api/kb/search", params={"q": "航天飞船"}).json() == []  # a final search: noted
    assert client.get("/api/kb/search", params={"q": "x" * 101}).status_code == 422
    sug = client.get("/api/kb/suggest", params={"ivr_category": "养老服务"}).json()
    assert len(sug) == 5 and sum(a["category"] in ("居家养老", "助餐送餐", "陪诊就医") for a in sug) >= 4, [
        (a["title"], a["category"]) for a in sug
    ]
    full = client.get(f"/api/kb/articles/{kb['dibao-apply']}").json()
    assert full["questions"][0] == "低保怎么申请" and full["status"] == "published"

    body = {"article_id": kb["dibao-apply"], "linkedid": "1764300000.9", "caller_phone": "+8613919310001"}
    assert client.post("/api/kb/answer", json=body).status_code == 403  # no CSRF token
    r = client.post("/api/kb/answer", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    assert (
        client.post(
            "/api/kb/answer", json={**body, "article_id": 99999}, headers={"X-CSRF-Token": token}
        ).status_code
        == 404
    )
    fb = client.post(
        "/api/kb/feedback",
        json={"article_id": kb["dibao-standard"], "kind": "wrong", "text": "2026年标准已调整"},
        headers={"X-CSRF-Token": token},
    )
    assert fb.status_code == 201 and fb.json()["owner"] == "admin"
    assert (
        client.post("/api/kb/feedback", json={"kind": "rude"}, headers={"X-CSRF-Token": token}).status_code
        == 422
    )
    with session_scope(db) as s:
        order = s.get(WorkOrder, r.json()["id"])
        assert (
            order.order_type == "咨询"
            and order.status == Status.CLOSED
            and order.call_linkedid == "1764300000.9"
        )
        steps = [h.action for h in s.exec(select(OrderHistory).where(OrderHistory.order_id == order.id))]
        assert steps == ["受理", "直接答复"]
        assert "知识库#" in order.resolution and "最低生活保障" in order.resolution
        use = s.exec(select(Use)).one()
        assert (use.article_id, use.order_id, use.seat) == (kb["dibao-apply"], order.id, "seat1001")
        assert s.get(Article, kb["dibao-apply"]).uses == 1
        assert [m.query for m in s.exec(select(SearchMiss))] == ["航天飞船"]
        assert s.exec(select(Feedback)).one().kind == "wrong"
    # Out-of-range and unknown ids, hostile queries: clear 4xx answers or plain text, never a 500.
    assert client.get("/api/kb/articles/99999999999").status_code == 422
    assert client.get("/api/kb/articles/99999").status_code == 404
    assert client.get("/api/kb/suggest", params={"resident_id": 0}).status_code == 422
    for q in ('"低保" OR *', "低保' | '", "NEAR(a b)", "％＿"):
        assert client.get("/api/kb/search", params={"q": q, "typing": "true"}).status_code == 200
    # A NUL character is refused at the edge with a clear answer (no database keeps it)
    nul = client.get("/api/kb/search", params={"q": "低保\x00", "typing": "true"})
    assert (
        nul.status_code == 400 and nul.json()["code"] == "nul_character" and "空字符" in nul.json()["message"]
    )
    # Seats do not see the managers' page, nor write articles without the editor role.
    assert client.get("/kb").status_code == 403
    new = {"title": "桃农补贴", "spoken": "到村委会登记。"}
    assert client.post("/api/kb/articles", json=new, headers={"X-CSRF-Token": token}).status_code == 403


def test_managers_page_lifecycle_api_import_export(db, client, web, kb):
    seat = web.TestClient(client.app)
    seat_token = login(seat, web, "seat1001")
    answered = seat.post(
        "/api/kb/answer", json={"article_id": kb["gaoling-butie"]}, headers={"X-CSRF-Token": seat_token}
    )
    assert answered.status_code == 201, answered.text
    assert seat.get("/api/kb/search", params={"q": "航天飞船"}).json() == []  # noted as a gap

    token = login(client, web, "super")
    page = client.get("/kb")
    assert page.status_code == 200 and "高龄补贴申领" in page.text and "航天飞船" in page.text
    assert 'data-figure="answered_share">100.0%' in page.text

    h = {"X-CSRF-Token": token}
    made = client.post(
        "/api/kb/articles", json={"title": "桃农补贴", "spoken": "到村委会登记。<b>"}, headers=h
    )
    assert made.status_code == 201 and made.json()["status"] == "draft"
    aid = made.json()["id"]
    assert client.post(f"/api/kb/articles/{aid}/review", json={}, headers=h).status_code == 403  # own text
    assert client.post(f"/api/kb/articles/{aid}/approve", json={}, headers=h).status_code == 422
    admin = web.TestClient(client.app)
    admin_token = login(admin, web, "admin")
    ah = {"X-CSRF-Token": admin_token}
    assert (
        admin.post(f"/api/kb/articles/{aid}/publish", json={}, headers=ah).status_code == 422
    )  # not reviewed
    assert admin.post(f"/api/kb/articles/{aid}/review", json={}, headers=ah).json()["status"] == "reviewed"
    assert admin.post(f"/api/kb/articles/{aid}/publish", json={}, headers=ah).json()["status"] == "published"
    assert seat.get("/api/kb/search", params={"q": "桃农补贴"}).json()[0]["id"] == aid
    assert "<b>" in seat.get(f"/api/kb/articles/{aid}").json()["spoken"]  # text, shown with textContent

    # A synonym group an editor adds finds the article by the new word at once.
    assert client.post("/api/kb/synonyms", json={"words": ["桃农", "种桃户"]}, headers=h).status_code == 201
    assert seat.get("/api/kb/search", params={"q": "种桃户补贴"}).json()[0]["id"] == aid
    assert (
        seat.post(
            "/api/kb/synonyms", json={"words": ["甲", "乙"]}, headers={"X-CSRF-Token": seat_token}
        ).status_code
        == 403
    )
    assert any(g["words"] == ["桃农", "种桃户"] for g in seat.get("/api/kb/synonyms").json())

    export = client.get("/kb/export", params={"status": "published"})
    assert export.status_code == 200
    rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "标题" and len(rows) == len(kb) + 2
    assert client.get("/kb/export", params={"status": "bogus"}).status_code == 422

    wb = Workbook()
    wb.active.append(["标题", "答复口径", "分类"])
    wb.active.append(["居住证续签", "到社区警务室办理。", "证明办理"])
    wb.active.append(["", "没有标题", ""])
    out = io.BytesIO()
    wb.save(out)
    files = {"file": ("k.xlsx", out.getvalue(), "application/octet-stream")}
    bad = client.post("/kb/import", files=files, data={"csrf": token})
    assert bad.status_code == 422 and 'data-ok="false"' in bad.text and "title is required" in bad.text
    wb.active.delete_rows(3)
    out = io.BytesIO()
    wb.save(out)
    files = {"file": ("k.xlsx", out.getvalue(), "application/octet-stream")}
    good = client.post("/kb/import", files=files, data={"csrf": token})
    assert good.status_code == 200 and 'data-ok="true"' in good.text
    assert (
        client.post("/kb/import", files={"file": ("k.xlsx", b"PK", "x")}, data={"csrf": token}).status_code
        == 422
    )
    with session_scope(db) as s:
        imported = s.exec(select(Article).where(Article.title == "居住证续签")).one()
        assert imported.status == "draft" and imported.category_id is not None


def test_attachments_bounded_checked_and_for_editors_only(db, client, web, kb):
    token = login(client, web, "seat1001")
    url = f"/kb/articles/{kb['dibao-apply']}/attachments"
    pdf = ("a.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    # A seat without the editor role: refused, nothing stored.
    assert client.post(url, data={"csrf": token}, files={"file": pdf}).status_code == 403
    page = client.get(f"/kb/articles/{kb['dibao-apply']}")  # published: readable, not editable
    assert page.status_code == 200 and 'id="kb-save"' not in page.text and 'id="kb-upload"' not in page.text
    with session_scope(db) as s:
        from_db = s.get(Article, kb["dibao-apply"])
        assert from_db is not None and from_db.attachments == []
    client.post("/logout", data={"csrf": token})
    token = login(client, web, "admin")
    big = ("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024), "application/pdf")
    exe = ("tool.pdf", b"MZ\x90\x00" * 10, "application/pdf")
    html = ("page.png", b"<html><script>alert(1)</script>", "image/png")
    for bad in (big, exe, html):
        r = client.post(url, data={"csrf": token}, files={"file": bad})
        assert r.status_code == 422, (bad[0], r.status_code)
    for _ in range(10):
        assert (
            client.post(url, data={"csrf": token}, files={"file": pdf}, follow_redirects=False).status_code
            == 303
        )
    assert client.post(url, data={"csrf": token}, files={"file": pdf}).status_code == 422  # at most 10
    for hostile in ("..%2F..%2Fsecrets.json", "0" * 32 + ".exe", "x"):
        assert client.get(f"/kb/articles/{kb['dibao-apply']}/attachments/{hostile}").status_code == 404
    with session_scope(db) as s:
        a = s.get(Article, kb["dibao-apply"])
        assert a is not None and len(a.attachments) == 10
        first = a.attachments[0]["id"]
    r = client.post(f"{url}/{first}/remove", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    with session_scope(db) as s:
        a = s.get(Article, kb["dibao-apply"])
        assert a is not None and len(a.attachments) == 9 and first not in {x["id"] for x in a.attachments}


def test_owner_sees_their_articles_lapsing_soon_and_reports_on_them(db, client, web, kb):
    today = china_now(db).date()
    with session_scope(db) as s:
        a = s.get(Article, kb["dibao-apply"])
        assert a is not None
        a.owner, a.valid_until = "seat1001", today + timedelta(days=10)
        s.add(a)
        s.commit()
        s.add(
            Feedback(article_id=a.id, kind="wrong", text="材料清单变了<b>", owner="seat1001", by="seat1002")
        )
        s.commit()
    login(client, web, "seat1001")
    page = client.get("/kb/articles").text
    assert 'id="kb-mine-expiring"' in page and f'data-id="{a.id}"' in page
    assert 'id="kb-mine-feedback"' in page and "材料清单变了&lt;b&gt;" in page
    assert (today + timedelta(days=10)).isoformat() in page
    login(client, web, "seat1002")
    assert 'id="kb-mine-expiring"' not in client.get("/kb/articles").text
