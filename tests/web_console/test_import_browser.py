"""The basic-data import in a real browser (Debian's Chromium through Playwright): upload an Excel
file of residents, watch the progress bar, read the row-by-row report."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import Workbook
from playwright.async_api import Error as PlaywrightError
from sqlmodel import func, select

from callcenter.database import session_scope
from callcenter.directory.models import Community, Jurisdiction
from callcenter.residents.models import Resident

pytestmark = pytest.mark.browser

SCREENS = Path(__file__).resolve().parents[2] / "var" / "screens"


def _xlsx(n: int, bad: bool = False) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "手机", "社区", "独居"])
    for i in range(n):
        ws.append([f"居民{i}", 13000000000 + i, "十里店东社区", "否"])
    if bad:
        ws.append(["<script>坏</script>", "12", "十里店东社区", "也许"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def _import(page, base: str, data: bytes, name: str) -> None:
    await page.goto(base + "/admin/basic")
    await page.select_option("select[name=kind]", "residents")
    await page.set_input_files(
        "input[name=file]",
        {
            "name": name,
            "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "buffer": data,
        },
    )
    await page.click("#import-form button[type=submit]")
    await page.wait_for_url(base + "/admin/import/*")


async def test_import_progress_and_report_in_chromium(live, browser, web):
    with session_scope(live.settings) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        s.add(Community(jurisdiction_id=j.id, name="十里店东社区"))
        s.commit()
    page = await browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live.base_url + "/login")
    await page.fill("#username", "admin")
    await page.fill("#password", web.password("admin"))
    await page.click("#login-submit")
    await page.wait_for_url(live.base_url + "/wallboard")

    # A file with one bad row: the report names it, nothing is imported, the text stays text.
    await _import(page, live.base_url, _xlsx(50, bad=True), "bad.xlsx")
    await page.wait_for_selector('#import-state[data-ok="false"]', timeout=30000)
    rows = await page.locator("#import-errors tbody tr").all_text_contents()
    assert len(rows) == 1 and rows[0].startswith("52")
    assert await page.locator("script:has-text('坏')").count() == 0
    with session_scope(live.settings) as s:
        assert s.exec(select(func.count()).select_from(Resident)).one() == 0

    # A long file: the bar moves while the import runs, then the page shows the result.
    n = 6000
    await _import(page, live.base_url, _xlsx(n), "residents.xlsx")
    seen = []
    for _ in range(600):
        try:
            state = await page.evaluate(
                "() => { const p = document.getElementById('import-progress');"
                " const s = document.getElementById('import-state');"
                " return p && s ? [Number(p.value), Number(p.max), s.dataset.ok || ''] : null; }"
            )
        except PlaywrightError:  # the page reloads itself when the import ends
            state = None
        if state:
            seen.append(state)
            if state[2] == "true":
                break
        await page.wait_for_timeout(50)
    assert seen and seen[-1] == [n, n, "true"], seen[-5:]
    values = [v for v, _, _ in seen]
    assert values == sorted(values)
    assert f"{n} / {n}" in await page.text_content("#import-count")
    SCREENS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENS / "basic-import.png"), full_page=True)
    with session_scope(live.settings) as s:
        assert s.exec(select(func.count()).select_from(Resident)).one() == n
    assert errors == []
