"""Operational settings and e-mail templates set by administrators over HTTP: refused to everyone
else, checked with catalogue messages, audited old → new, announced on the bus, and used by the
running service: a seat's pause, the supervisors' 督办 e-mail and the order e-mail a real SMTP
server (aiosmtpd) receives."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import datetime

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from callcenter import topics
from callcenter.audit.models import AuditEntry
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, Outlet
from callcenter.mail import MailWorker
from callcenter.messages import ConfigChanged, ConfigRequest
from dispatch import service as dispatch
from dispatch import transitions
from dispatch.models import WorkOrder
from dispatch.summaries import enqueue_daily_summaries
from dispatch.testing import World, build_world


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


@pytest.fixture
def smtp(db):
    inbox = Inbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    db.smtp_host, db.smtp_port, db.mail_from = "127.0.0.1", port, "hotline@anning.example"
    db.supervisor_emails = []
    yield inbox
    controller.stop()


@pytest.fixture
def world(db) -> World:
    with session_scope(db) as s:
        w = build_world(s)
        s.get(Outlet, w.outlet_a).email = "zhan@anning.example"
        s.add(CallQueue(name="q12345", title="热线", service_level=20))
        s.commit()
        return w


def _admin(web, app):
    c = web.TestClient(app)
    assert web.login(c, "admin").status_code == 303
    return c, {"X-CSRF-Token": web.csrf(c.get("/admin/operations").text)}


@pytest.mark.parametrize("user", ["seat1001", "outlet", "super"])
def test_refused_for_seats_outlets_and_supervisors(db, app, web, world, user):
    c = web.TestClient(app)
    assert web.login(c, user).status_code == 303
    for path in ("/admin/operations", "/api/operations"):
        assert c.get(path, follow_redirects=False).status_code == 403, path
    assert c.post("/api/operations", json={"pause_reasons": ["x"]}).status_code == 403
    assert c.post("/api/operations/queues/q12345", json={"service_level": 5}).status_code == 403


def test_operational_settings_checked_audited_announced_and_used(db, app, web, world, bus):
    c, h = _admin(web, app)
    sub = bus.subscribe(topics.CONFIG_CHANGED)
    # Refused with the catalogue's message, nothing saved.
    r = c.post("/api/operations", json={"supervisor_emails": "not-an-address"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "operations_email"
    r = c.post("/api/operations", json={"pause_reasons": "用餐\n<script>"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "operations_pause_reason"
    r = c.post("/api/operations", json={"stats_report_hour": "２"}, headers=h)  # not an ASCII digit
    assert r.status_code == 422
    assert sub.queue.empty()

    r = c.post(
        "/api/operations",
        json={
            "pause_reasons": "用餐\n党建学习",
            "supervisor_phones": "13900009999",
            "supervisor_emails": "banzhang@anning.example",
            "answered_rate_alert": "90",
            "daily_summary_at": "17:30",
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pause_reasons"] == {"value": ["用餐", "党建学习"], "custom": True}
    assert body["supervisor_phones"]["value"] == ["+8613900009999"]
    assert body["answered_rate_alert"]["value"] == 0.9 and body["service_level_s"]["custom"] is False
    topic, payload = sub.queue.get_nowait()
    assert ConfigChanged.from_json(payload).part == "operations"
    # The running service uses them: the process's settings, the seat's pause and console.
    assert db.pause_reasons == ["用餐", "党建学习"] and db.daily_summary_at == "17:30"
    with session_scope(db) as s:
        [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "operations.save")).all()
        assert entry.actor == "admin"
        assert entry.detail["old"]["pause_reasons"] == ["用餐", "休息", "培训", "整理工单", "会议"]
        assert entry.detail["new"]["pause_reasons"] == ["用餐", "党建学习"]
    seat = web.TestClient(app)
    web.login(seat, "seat1001")
    token = web.csrf(seat.get("/console").text)
    assert "党建学习" in seat.get("/console").text
    sh = {"X-CSRF-Token": token}
    assert (
        seat.post("/api/seat/pause", json={"paused": True, "reason": "党建学习"}, headers=sh).status_code
        == 202
    )
    assert (
        seat.post("/api/seat/pause", json={"paused": True, "reason": "休息"}, headers=sh).status_code == 422
    )

    # The page (zh-CN) shows and saves the same; "reset" brings the environment's value back.
    page = c.get("/admin/operations")
    assert page.status_code == 200 and "运行参数" in page.text and "党建学习" in page.text
    r = c.post(
        "/admin/operations/save",
        data={"csrf": h["X-CSRF-Token"], "pause_reasons": "用餐\n党建学习", "reset": "answered_rate_alert"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert db.answered_rate_alert == 0.95
    r = c.post("/admin/operations/save", data={"csrf": h["X-CSRF-Token"], "service_level_s": "0"})
    assert r.status_code == 422 and "1到600" in r.text.replace(" ", "")


def test_a_queue_threshold_is_saved_audited_and_rendered_again(db, app, web, world, bus):
    c, h = _admin(web, app)
    sub = bus.subscribe(topics.CONFIG)
    r = c.post("/api/operations/queues/q12345", json={"service_level": 30, "wrapup": 10}, headers=h)
    assert r.status_code == 200, r.text
    [q] = [q for q in r.json()["queues"] if q["name"] == "q12345"]
    assert q["service_level"] == 30 and q["wrapup"] == 10
    _topic, payload = sub.queue.get_nowait()
    assert ConfigRequest.from_json(payload).modules == ["app_queue.so"]
    with session_scope(db) as s:
        [entry] = s.exec(select(AuditEntry).where(AuditEntry.action == "queue.save")).all()
        assert entry.detail["old"] == {"service_level": 20, "wrapup": 5}
    assert c.post("/api/operations/queues/q12345", json={"service_level": 9999}, headers=h).status_code == 422
    assert c.post("/api/operations/queues/nosuch", json={"wrapup": 1}, headers=h).status_code == 404


def _dispatch(db, world) -> str:
    seat = dispatch.Actor("seat1001", "seat")
    with session_scope(db) as s:
        o = dispatch.create_order(
            s,
            seat,
            order_type="求助",
            summary="<b>楼道灯</b>不亮",
            community_id=world.community,
            address="南街28号",
        )
        s.flush()
        transitions.transition(s, o, "派单", seat, outlet_id=world.outlet_a)
        s.commit()
        return o.number


async def test_an_email_template_edited_over_http_is_what_the_smtp_server_receives(db, app, web, world, smtp):
    c, h = _admin(web, app)
    # A variable the template does not have, and a two-line subject, are refused.
    r = c.post("/api/templates", json={"name": "order_mail", "subject": "x", "body": "{nope}"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "template_variable"
    r = c.post("/api/templates", json={"name": "order_mail", "subject": "", "body": "{number}"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "template_subject"
    r = c.post(
        "/api/templates",
        json={
            "name": "order_mail",
            "subject": "【测试】{action} {number}",
            "body": "{outlet}您好：\n请办理 {number}：{summary}\n回复编号 {code}",
            "provider_code": "ignored_for_mail",
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["channel"] == "mail" and r.json()["provider_code"] == ""
    number = _dispatch(db, world)
    # The preview with the real order.
    r = c.get("/api/templates/preview", params={"name": "order_mail", "order": number})
    assert r.status_code == 200 and r.json()["subject"] == f"【测试】派单 {number}"
    assert "十里店社区服务站您好" in r.json()["body"]

    worker = MailWorker(db)
    assert await worker.run_once() == 1
    [msg] = smtp.messages()
    assert msg["Subject"] == f"【测试】派单 {number}" and msg["To"] == "zhan@anning.example"
    plain = msg.get_body(("plain",)).get_content()
    assert plain.startswith("十里店社区服务站您好：\n请办理 " + number + "：<b>楼道灯</b>不亮")
    html = msg.get_body(("html",)).get_content()
    assert "&lt;b&gt;楼道灯&lt;/b&gt;" in html and "<b>楼道灯" not in html


async def test_supervisors_from_the_page_get_the_daily_summary_template(db, app, web, world, smtp):
    c, h = _admin(web, app)
    r = c.post("/api/operations", json={"supervisor_emails": "banzhang@anning.example"}, headers=h)
    assert r.status_code == 200
    r = c.post(
        "/api/templates",
        json={
            "name": "daily_summary_mail",
            "subject": "日报 {scope} {day}",
            "body": "新增 {created} 件\n{overdue_list}",
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    _dispatch(db, world)
    with session_scope(db) as s:
        assert enqueue_daily_summaries(s, db, datetime.now(CHINA_TZ).date()) >= 1
        s.commit()
    worker = MailWorker(db)
    while await worker.run_once():
        pass
    subjects = {m["To"]: m["Subject"] for m in smtp.messages()}
    assert subjects["banzhang@anning.example"].startswith("日报 全区 ")
    with session_scope(db) as s:
        assert s.exec(select(WorkOrder)).first() is not None
