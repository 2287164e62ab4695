"""The reports page in a real browser (Debian's Chromium through Playwright): the server-drawn
chart is drawn under the page's Content-Security-Policy, the definitions are the headers'
tooltips, and nothing is fetched from outside. Leaves docs/screenshots/reports.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.statistics.demo import history_lines
from callcenter.statistics.follower import StatsFollower
from callcenter.statistics.service import days_back

pytestmark = pytest.mark.browser

SHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "reports.png"


async def test_reports_page_in_chromium(live, browser, web, db, tmp_path):
    log = tmp_path / "queue_log"
    log.write_text("\n".join(history_lines({"张丽": "1001", "李强": "1002"}, days=7, per_day=60)) + "\n")
    f = StatsFollower(db, path=log)
    while f.step():
        pass
    start, end = days_back(7, days_back(2)[0])  # the seven days before today
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live.base_url) else None)
    await page.goto(live.base_url + "/login")
    await page.fill("#username", "super")
    await page.fill("#password", web.password("super"))
    await page.click("#login-submit")
    await page.wait_for_url(live.base_url + "/wallboard")
    await page.goto(f"{live.base_url}/reports?start={start}&end={end}&by=day")
    bars = page.locator("figure.chart-box svg rect")
    assert await bars.count() > 7 * 3
    box = await page.locator("figure.chart-box svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    header = page.get_by_role("columnheader", name="接通率", exact=True)
    assert await header.get_attribute("title") == "接听 ÷ 呼入"
    rows = await page.locator("#report-table tbody tr").count()
    assert rows == 7
    total = await page.locator('#report-table tfoot td[data-key="offered"]').inner_text()
    assert int(total) > 0
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOT), full_page=True)
    assert not [f for f in failed if not f.endswith("/favicon.ico")], failed
    # A CSP violation would show here ("Refused to …"); the browser's own favicon 404 is no matter.
    assert not [p for p in problems if not p.startswith("Failed to load resource")], problems
    assert not outside, outside
