"""Editors and reviewers in a real browser (Debian's Chromium through Playwright): an editor
writes an article with every field on the page and attaches a PDF; a reviewer (another account)
marks it reviewed and publishes it; the versions are listed; the seat's search finds it; the file
is served to signed-in accounts only and kept owner-only on disk."""

from __future__ import annotations

import stat

import pytest
from sqlmodel import select

from callcenter.database import session_scope
from callcenter.knowledge import attachments, service
from callcenter.knowledge.models import Article, ArticleStatus, KbRole
from dispatch.categories import seed_categories

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def _login(browser, base: str, who: str, web):
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + "/login")
    await page.fill("#username", who)
    await page.fill("#password", web.password(who))
    await page.click("#login-submit")
    await page.wait_for_load_state("load")
    assert "/login" not in page.url
    return context, page


async def test_editor_writes_reviewer_publishes_with_attachment(live, browser, web):
    with session_scope(live.settings) as s:
        cats = seed_categories(s)
        service.grant(s, "seat1001", KbRole.EDITOR.value)
        s.commit()
        category = next(c for c in cats.values() if c.name == "居家养老")
    base = live.base_url
    errors: list[str] = []

    ed_ctx, ed = await _login(browser, base, "seat1001", web)
    ed.on("pageerror", lambda e: errors.append(str(e)))
    await ed.goto(base + "/kb/articles")
    await ed.click("#kb-new")
    await ed.fill("input[name=title]", "高龄补贴申领<script>坏</script>")
    await ed.fill("textarea[name=questions]", "八十岁老人有补贴吗\n高龄津贴怎么领")
    await ed.fill("textarea[name=spoken]", "年满80周岁的老人到社区申请。")
    await ed.fill("textarea[name=answer]", "带身份证、户口簿和银行卡到社区申请，按月发放。")
    await ed.select_option("select[name=category_id]", str(category.id))
    await ed.fill("input[name=owner_office]", "安宁区民政局")
    await ed.fill("input[name=source_doc]", "安宁区高龄补贴实施办法")
    await ed.fill("input[name=source_number]", "安民发〔2026〕12号")
    await ed.fill("input[name=valid_from]", "2026-01-01")
    await ed.fill("input[name=valid_until]", "2030-12-31")
    await ed.fill("input[name=keywords]", "高龄补贴,高龄津贴")
    await ed.click("#kb-save")
    await ed.wait_for_selector('#kb-article[data-status="draft"]')
    article_id = int(await ed.get_attribute("#kb-article", "data-id") or 0)
    assert await ed.locator("script:has-text('坏')").count() == 0  # the title stays text

    # A bad date: the page says why and keeps what was typed.
    await ed.fill("input[name=valid_until]", "")
    await ed.evaluate("document.querySelector('input[name=valid_until]').type = 'text'")
    await ed.fill("input[name=valid_until]", "明年")
    await ed.fill("textarea[name=spoken]", "改过的口径")
    await ed.click("#kb-save")
    await ed.wait_for_selector("#kb-error")
    assert await ed.input_value("textarea[name=spoken]") == "改过的口径"

    # An attachment: a PDF is kept; a file that is not one of the allowed types is refused.
    await ed.goto(f"{base}/kb/articles/{article_id}")
    await ed.set_input_files(
        "#kb-upload input[name=file]", {"name": "实施办法.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    await ed.click("#kb-upload button[type=submit]")
    await ed.wait_for_selector("#kb-attachments a:has-text('实施办法.pdf')")
    await ed.set_input_files(
        "#kb-upload input[name=file]",
        {"name": "x.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00"},
    )
    await ed.click("#kb-upload button[type=submit]")
    await ed.wait_for_selector("#kb-error")
    assert await ed.locator("#kb-attachments li").count() == 1
    # The editor is not a reviewer: no step buttons.
    assert await ed.locator("#kb-steps").count() == 0

    rv_ctx, rv = await _login(browser, base, "super", web)
    rv.on("pageerror", lambda e: errors.append(str(e)))
    await rv.goto(f"{base}/kb/articles?status=draft")
    await rv.click(f'#kb-article-list tr[data-id="{article_id}"] a')
    await rv.fill("#kb-steps input[name=note]", "已核对文件")
    await rv.click("#kb-step-review")
    await rv.wait_for_selector('#kb-article[data-status="reviewed"]')
    await rv.click("#kb-step-publish")
    await rv.wait_for_selector('#kb-article[data-status="published"]')
    actions = await rv.locator("#kb-versions tbody tr td:nth-child(3)").all_text_contents()
    assert actions == ["publish", "review", "attach", "create"], actions
    assert "已核对文件" in await rv.text_content("#kb-versions")

    # The seat's search finds it; the file opens for a signed-in account.
    hits = await ed.evaluate("async () => (await fetch('/api/kb/search?q=高龄津贴')).json()")
    assert hits and hits[0]["id"] == article_id
    href = await rv.get_attribute("#kb-attachments a", "href")
    r = await ed_ctx.request.get(base + href)
    assert r.status == 200 and await r.body() == PDF
    assert r.headers["x-content-type-options"] == "nosniff"
    # In the seat's console the article's files are listed with it.
    await ed.goto(base + "/console")
    await ed.fill("#kb-q", "高龄津贴")
    await ed.wait_for_selector(f'#kb-results [data-id="{article_id}"], #kb-results li')
    await ed.keyboard.press("Alt+1")
    await ed.wait_for_selector(
        "#kb-article:not([hidden]) [data-field=files] a:has-text('实施办法.pdf')", state="attached"
    )
    assert await ed.get_attribute("#kb-article [data-field=files] a", "href") == href
    anon = await browser.new_context()
    r = await anon.request.get(base + href, max_redirects=0)
    assert r.status in (302, 303, 401)
    await anon.close()

    with session_scope(live.settings) as s:
        a = s.get(Article, article_id)
        assert a is not None and a.status == ArticleStatus.PUBLISHED
        assert a.source_number == "安民发〔2026〕12号" and a.category_id == category.id
        assert str(a.valid_until) == "2030-12-31" and a.spoken == "年满80周岁的老人到社区申请。"
        path, entry = attachments.find(live.settings, a, a.attachments[0]["id"])
        assert entry["name"] == "实施办法.pdf" and path.read_bytes() == PDF
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert len(s.exec(select(Article)).all()) == 1
    assert errors == []
    await ed_ctx.close()
    await rv_ctx.close()
