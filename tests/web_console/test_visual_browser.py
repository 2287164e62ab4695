"""What seats and supervisors see, checked in Chromium as they see it: the console during a ringing
call, a talking call and a pause, the wallboard, the reports and the outlet's page, at 1366×768
(the console at 1920×1080 too, the outlet's page at 390×844 too), in zh-CN and in English.

Each screen is audited in the page itself: a label that wraps, an element that overflows its
container (or the page wider than the window), a text that is an untranslated catalogue key — any
of them fails the test. The zh-CN screens are the README's screenshots (docs/screenshots/, taken
by this run); the English ones are left in var/screens/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlmodel import select

from callcenter.accounts.models import Account, Phone
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from dispatch import service, transitions
from dispatch.testing import build_world
from web_console.access import NAV

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "screenshots"
SCREENS = ROOT / "var" / "screens"
LANGS = ("zh-CN", "en")

# The audit, run in the page (a function of the areas whose elements must stay in their containers).
AUDIT = (Path(__file__).parent / "layout_audit.js").read_text(encoding="utf-8")


async def audit(page, *areas: str) -> list[str]:
    return await page.evaluate(AUDIT, list(areas or ("header", "main")))


async def shoot(page, name: str, lang: str, full_page: bool = False) -> None:
    folder = DOCS if lang == "zh-CN" else SCREENS
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if lang == "zh-CN" else "-en"
    await page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=full_page)


async def open_page(browser, live, web, username: str, lands: str, lang: str, width=1366, height=768):
    page = await browser.new_page(viewport={"width": width, "height": height}, locale=lang)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(live.base_url + "/login?lang=" + ("zh" if lang == "zh-CN" else "en"))
    await page.fill("#username", username)
    await page.fill("#password", web.password(username))
    await page.click("#login-submit")
    await page.wait_for_url(live.base_url + lands)
    return page


@pytest.fixture
def directory(live):
    """The queues and service numbers with the names people read (the demo's)."""
    with session_scope(live.settings) as s:
        for name, title in (("hotline", "综合热线"), ("elderly", "老年服务"), ("complaint", "投诉建议")):
            s.add(CallQueue(name=name, title=title))
        s.add(ServiceNumber(number="96345", title="安宁便民热线", queue_name="hotline"))
        s.commit()
    return live


# A resident with a long file, as the demo's 王秀英 has: the pop must not push the controls away.
ARCHIVE = {
    "household": [{"name": "李强", "relation": "儿子", "phone": "13919310011", "birth_year": 1972}],
    "elderly": {
        "health_notes": "高血压，行动不便，需助行器",
        "emergency_phone": "13919310011",
        "caregiver": "社区网格员 赵敏",
        "caregiver_phone": "13919310099",
    },
    "archive": [
        {
            "service": "陪诊就医",
            "outlet": "安宁区居家养老服务中心",
            "at": f"2026-11-{d:02d}",
            "outcome": "已上门处理完毕",
        }
        for d in range(1, 13)
    ],
    "orders": [
        {
            "id": 100 + d,
            "number": f"GD202611{d:02d}-00001",
            "type": "求助",
            "status": "已签收",
            "category": "养老服务",
            "created_at": f"2026-11-{d:02d}",
            "created_iso": f"2026-11-{d:02d}T09:00:00",
            "summary": "老人血压偏高，请社区医生上门测量",
        }
        for d in range(1, 9)
    ],
}


# What a seat needs during a call, each wholly inside the window (the page not scrolled).
DURING_A_CALL = {
    "the pop": "#pop",
    "hang up": '#call-control [data-action="hangup"]',
    "transfer": '#call-control [data-action="attended"]',
    "order summary": '#order-form [name="summary"]',
    "order outlet": '#order-form [name="outlet_id"]',
    "save the order": "#order-save",
    "phone": "#phone",
    "phone's hang-up": '#phone [data-phone="hangup"]',
    "phone's keypad": '#phone [data-field="phone-keypad"]',
}

# The browser phone's panel as phone.js shows it during a call (its buttons and keypad): here no
# SIP call reaches it (tests/e2e/test_webrtc_browser.py has real ones), so the page shows it so.
PHONE_TALKING = """() => {
  const root = document.getElementById("phone");
  root.dataset.call = "talking";
  root.querySelector('[data-field="phone-call-state"]').textContent = window.ccI18n.t("phone.call.talking");
  root.querySelector('[data-field="phone-caller"]').textContent = "13912345678";
  for (const sel of ['[data-phone="hangup"]', '[data-phone="mute"]', '[data-phone="hold"]',
                     '[data-field="phone-keypad"]']) root.querySelector(sel).hidden = false;
}"""
PHONE_IDLE = """() => {
  const root = document.getElementById("phone");
  root.dataset.call = "idle";
  root.querySelector('[data-field="phone-call-state"]').textContent = "";
  root.querySelector('[data-field="phone-caller"]').textContent = "";
  for (const sel of ['[data-phone="hangup"]', '[data-phone="mute"]', '[data-phone="hold"]',
                     '[data-field="phone-keypad"]']) root.querySelector(sel).hidden = true;
}"""


async def on_screen(page, size: tuple[int, int]) -> dict[str, object]:
    """What of DURING_A_CALL is hidden or not wholly in the window: {name: its box}."""
    assert await page.evaluate("window.scrollY") == 0
    off: dict[str, object] = {}
    for name, selector in DURING_A_CALL.items():
        box = await page.locator(selector).bounding_box()
        if (
            box is None
            or not await page.is_visible(selector)
            or box["x"] < 0
            or box["y"] < 0
            or box["x"] + box["width"] > size[0]
            or box["y"] + box["height"] > size[1]
        ):
            off[name] = box
    return off


def seat_state(state: str, reason: str = "", since: float | None = None, paused: bool = False) -> dict:
    return {
        "type": "state",
        "ext": "1001",
        "name": "张丽",
        "state": state,
        "paused": paused or state == "paused",
        "paused_reason": reason,
        "queues": ["complaint", "elderly", "hotline"],
        "since": since or time.time() - 42,
        "wrapup_until": 0,
    }


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
async def test_the_console_reads_at_a_glance(directory, browser, web, lang, size):
    live = directory
    with session_scope(live.settings) as s:  # the browser phone's panel takes its room too
        seat = s.exec(select(Account).where(Account.username == "seat1001")).one()
        seat.phone = Phone.BROWSER
        s.add(seat)
        s.commit()
    page = await open_page(browser, live, web, "seat1001", "/console", lang, *size)
    await page.wait_for_selector('#conn[data-conn="online"]')
    tag = f"console-{size[0]}" if size != (1366, 768) else "console"
    zh = lang == "zh-CN"
    waiting = {"type": "queues", "waiting": {"hotline": 2, "elderly": 0, "complaint": 1}}

    # Ringing: the seat's state shown once (the pop's), the queue counters by name.
    ringing = web.pop("1700000000.77", state="ringing")
    await live.bus.publish("seat.1001", seat_state("ringing", since=time.time() - 4))
    await live.bus.publish("seat.1001", waiting)
    await live.bus.publish("seat.1001", ringing)
    await page.wait_for_selector('#pop[data-state="ringing"]')
    await page.wait_for_selector('#seat-status[data-oncall="true"]')
    assert not await page.is_visible("#seat-state")
    assert await page.text_content("#pop [data-field=state]") == ("来电振铃" if zh else "Incoming call")
    await page.wait_for_selector('#my-queues[data-waiting="3"]')
    counters = await page.text_content("#my-queues")
    assert counters == ("排队 3 · 投诉建议 1 · 综合热线 2" if zh else "3 waiting · 投诉建议 1 · 综合热线 2")
    tooltip = await page.get_attribute("#my-queues", "title")
    for title in ("综合热线", "老年服务", "投诉建议"):
        assert title in tooltip, tooltip
    for queue_id in ("hotline", "elderly", "complaint"):
        assert queue_id not in counters + tooltip
    assert await page.text_content("#pop [data-field=queue]") == "综合热线"
    assert await page.text_content("#pop [data-field=did]") == "安宁便民热线"
    assert await audit(page) == []
    await shoot(page, f"{tag}-ringing", lang)

    # Talking.
    await live.bus.publish("seat.1001", seat_state("talking", since=time.time() - 65))
    await live.bus.publish("seat.1001", web.pop("1700000000.77", state="talking", dispatch=ARCHIVE))
    await page.wait_for_selector('#pop[data-state="talking"]')
    await page.wait_for_selector('#seat-state[data-state="talking"]', state="attached")
    assert not await page.is_visible("#seat-state")  # the pop says it: once
    assert await page.text_content("#pop [data-field=state]") == ("通话中" if zh else "On call")
    # The pop, the call's controls, the order form and the browser phone, without scrolling.
    await page.evaluate(PHONE_TALKING)
    await page.wait_for_selector("#order-panel:not([hidden])")
    assert await on_screen(page, size) == {}
    assert await audit(page) == []
    await shoot(page, f"{tag}-talking", lang)

    # Paused during the call: still one state (the call's), the pause a note on the pop.
    pausing = seat_state("talking", reason="用餐", since=time.time() - 70, paused=True)
    await live.bus.publish("seat.1001", pausing)
    await page.wait_for_selector('#pop [data-field="pause-note"]:not([hidden])')
    note = await page.text_content('#pop [data-field="pause-note"]')
    assert note == ("通话后暂停：用餐" if zh else "pauses after the call: 用餐")
    assert await page.text_content("#pop [data-field=state]") == ("通话中" if zh else "On call")
    assert not await page.is_visible("#seat-state") and not await page.is_visible("#seat-state-reason")
    assert await page.get_attribute("#pause-toggle", "data-paused") == "true"  # it can be taken back
    assert await audit(page) == []
    assert await on_screen(page, size) == {}

    # Paused, with its reason, after the call.
    await page.evaluate(PHONE_IDLE)
    await live.bus.publish("seat.1001", {"type": "clear", "linkedid": "1700000000.77", "reason": "hangup"})
    await page.wait_for_selector("#pop", state="detached")
    await live.bus.publish("seat.1001", seat_state("paused", reason="用餐"))
    await page.wait_for_selector('#seat-state[data-state="paused"]', state="attached")
    assert await page.is_visible("#seat-state")  # no call: the top bar says it
    assert await page.text_content("#seat-state-reason") == "用餐"
    assert await page.text_content("#seat-state") == ("暂停" if zh else "Paused")
    assert await audit(page) == []
    await shoot(page, f"{tag}-paused", lang)
    assert page.errors == []
    await page.close()


@pytest.mark.parametrize("lang", LANGS)
async def test_the_wallboard_and_the_reports_read_at_a_glance(directory, browser, web, lang):
    live = directory
    page = await open_page(browser, live, web, "super", "/wallboard", lang)
    await page.wait_for_selector('#conn[data-conn="online"]')
    now = time.time()
    seat = {"queues": ["hotline", "elderly"], "since": now - 75, "paused_reason": "", "wrapup_until": 0}
    await live.bus.publish(
        "wallboard",
        {
            "type": "snapshot",
            "at": now,
            "queues": {
                "hotline": {
                    "waiting": 2,
                    "longest_wait_s": 21.0,
                    "offered": 128,
                    "answered": 121,
                    "abandoned": 7,
                    "answered_rate": 0.945,
                    "service_level": 0.91,
                    "service_level_s": 15,
                },
                "elderly": {
                    "waiting": 0,
                    "longest_wait_s": 0.0,
                    "offered": 36,
                    "answered": 36,
                    "abandoned": 0,
                    "answered_rate": 1.0,
                    "service_level": 0.97,
                    "service_level_s": 15,
                },
            },
            "seats": [
                {
                    **seat,
                    "ext": "1001",
                    "name": "张丽",
                    "state": "talking",
                    "paused": True,
                    "paused_reason": "用餐",
                    "calls_today": 23,
                },
                {
                    **seat,
                    "ext": "1002",
                    "name": "李强",
                    "state": "paused",
                    "paused_reason": "会议",
                    "calls_today": 17,
                },
                {**seat, "ext": "1003", "name": "赵敏", "state": "ringing", "calls_today": 9},
            ],
            "day": "2026-12-05",
            "alerts": {"wait_s": 15, "answered_rate": 0.95},
        },
    )
    await page.wait_for_selector('#queues tr[data-queue="hotline"]')
    assert await page.text_content('#queues tr[data-queue="hotline"] [data-field=queue]') == "综合热线"
    # A seat paused during its call: one state (talking), the pause a note beside it.
    talking = '#seats tr[data-ext="1001"]'
    assert await page.get_attribute(talking, "data-state") == "talking"
    state = await page.text_content(talking + " [data-field=state]")
    assert state == ("通话中" if lang == "zh-CN" else "On a call")
    reason = await page.text_content(talking + " [data-field=reason]")
    assert reason == ("通话后暂停：用餐" if lang == "zh-CN" else "pauses after the call: 用餐")
    assert await audit(page) == []
    # The board is read across the room: its tables fit the window, nothing to scroll sideways.
    widths = await page.evaluate(
        "[...document.querySelectorAll('.table-scroll')].map(e => e.scrollWidth - e.clientWidth)"
    )
    assert widths == [0, 0], widths
    await shoot(page, "wallboard-1366", lang)

    await page.goto(live.base_url + "/reports?by=queue")
    assert await audit(page) == []
    await shoot(page, "reports-1366", lang, full_page=True)
    assert page.errors == []
    await page.close()


@pytest.mark.parametrize("lang", LANGS)
async def test_the_outlet_page_reads_at_a_glance(live, browser, web, lang):
    with session_scope(live.settings) as s:
        w = build_world(s)
        outlet_user = s.exec(select(Account).where(Account.username == "outlet")).one()
        outlet_user.outlet_id = w.outlet_b
        s.add(outlet_user)
        order = service.create_order(
            s,
            w.seat,
            order_type="求助",
            summary="独居老人家中厨房水管漏水，请求上门维修",
            resident_id=w.resident,
            category_id=w.cat_water,
            settings=live.settings,
        )
        transitions.transition(s, order, "派单", w.seat, outlet_id=w.outlet_b, settings=live.settings)
        s.commit()
        number = order.number
    for size, name in (((390, 844), "outlet-page"), ((1366, 768), "outlet-page-1366")):
        page = await open_page(browser, live, web, "outlet", "/outlet", lang, *size)
        assert await audit(page) == []
        await page.click(f'[data-number="{number}"] a')
        await page.wait_for_selector('form[data-action="签收"]')
        assert await audit(page) == []
        await shoot(page, name, lang, full_page=True)
        assert page.errors == []
        await page.close()


# Every other page of the menus (the navigation's own table, so a new page is audited too), as the
# administrator (who sees them all) opens them at 1366×768; /reports and the wallboard are above.
PAGES = tuple(link.path for link in NAV if link.path not in ("/console", "/wallboard", "/reports")) + (
    "/reports/daily",
)


@pytest.mark.parametrize("lang", LANGS)
async def test_every_menu_page_reads_at_a_glance(directory, browser, web, lang):
    live = directory
    page = await open_page(browser, live, web, "admin", "/wallboard", lang)
    problems = {}
    for path in PAGES:
        response = await page.goto(live.base_url + path)
        assert response is not None and response.status == 200, path
        if found := await audit(page):
            problems[path] = found
    assert problems == {}
    assert page.errors == []
    await page.close()
