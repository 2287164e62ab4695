"""The voice menu and hours pages (administrators) and the out-of-hours items (seats): checked
input, the audit log, and a dialplan-only reload asked of the engine."""

from __future__ import annotations

import io
import wave
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ivr.models import CallerRequest, IvrOption, ServiceHours

from .conftest import csrf_from


@pytest.fixture
def admin(client, web, db):
    with session_scope(db) as s:
        s.add(CallQueue(name="hotline", title="社区服务热线"))
        s.add(CallQueue(name="elderly", title="老年服务"))
        s.add(ServiceNumber(number="96346", title="语音导航", queue_name="hotline"))
        s.commit()
    assert web.login(client, "admin").status_code == 303
    return csrf_from(client.get("/admin/ivr").text)


def actions(db) -> list[tuple[str, str]]:
    with session_scope(db) as s:
        return [(e.action, e.target) for e in s.exec(select(AuditEntry).order_by(AuditEntry.id))]


def key(digit="1", queue="elderly", prompt="老年服务请按1", **over):
    return {
        "number": "96346",
        "digit": digit,
        "queue_name": queue,
        "category": "养老服务",
        "label": "老年服务",
        "prompt_text": prompt,
    } | over


def test_admin_sets_a_key_and_hours_and_the_dialplan_is_reloaded(client, admin, db, bus):
    config = bus.subscribe("engine.config")
    r = client.post("/admin/ivr/options", data={"csrf": admin, **key(label="<b>x</b>")})
    assert r.status_code == 200 and "&lt;b&gt;x&lt;/b&gt;" in r.text and "<b>x</b>" not in r.text
    payload = config.queue.get_nowait()[1]
    assert payload["modules"] == ["pbx_config.so"] and payload["reason"] == "menu key 96346/1"
    r = client.post(
        "/admin/ivr/hours",
        data={
            "csrf": admin,
            "number": "96346",
            "schedule": "workdays",
            "open_time": "08:30",
            "close_time": "17:30",
        },
    )
    assert r.status_code == 200 and "法定节假日休息" in r.text
    with session_scope(db) as s:
        option = s.exec(select(IvrOption)).one()
        assert (option.digit, option.queue_name, option.prompt_text) == ("1", "elderly", "老年服务请按1")
        assert s.exec(select(ServiceHours)).one().schedule == "workdays"
    assert ("ivr.option.save", "96346/1") in actions(db) and ("ivr.hours.save", "96346") in actions(db)


@pytest.mark.parametrize(
    "form",
    [
        key(digit="x"),
        key(digit="12"),
        key(queue="nosuch"),
        key(prompt="   "),
        key(number="99999"),
    ],
)
def test_bad_keys_are_refused(client, admin, db, form):
    r = client.post("/admin/ivr/options", data={"csrf": admin, **form})
    assert r.status_code == 422
    with session_scope(db) as s:
        assert s.exec(select(IvrOption)).first() is None


def test_bad_hours_and_no_csrf_are_refused(client, admin, db):
    r = client.post(
        "/admin/ivr/hours",
        data={
            "csrf": admin,
            "number": "96346",
            "schedule": "daily",
            "open_time": "18:00",
            "close_time": "08:00",
        },
    )
    assert r.status_code == 422
    assert client.post("/admin/ivr/options", data={"csrf": "forged", **key()}).status_code == 403


def _wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x01" * int(seconds * rate))
    return buf.getvalue()


def test_a_recorded_prompt_replaces_the_spoken_one(client, admin, db, bus):
    from tests.conftest import require

    require("sox")
    client.post("/admin/ivr/options", data={"csrf": admin, **key()})
    with session_scope(db) as s:
        option_id = s.exec(select(IvrOption)).one().id
    bad = client.post(
        f"/admin/ivr/options/{option_id}/upload",
        data={"csrf": admin},
        files={"recording": ("x.mp3", b"ID3\x03junk", "audio/mpeg")},
    )
    assert bad.status_code == 422
    ok = client.post(
        f"/admin/ivr/options/{option_id}/upload",
        data={"csrf": admin},
        files={"recording": ("p.wav", _wav(), "audio/wav")},
    )
    assert ok.status_code == 200
    with session_scope(db) as s:
        sha = s.exec(select(IvrOption)).one().prompt_upload
    assert len(sha) == 64 and (db.data_dir / "prompt_uploads" / f"{sha}.wav").exists()
    assert ("ivr.prompt.upload", "96346/1") in actions(db)


def test_an_upload_for_an_unknown_menu_key_is_refused_and_not_kept(client, admin, db):
    r = client.post(
        "/admin/ivr/options/987654/upload",
        data={"csrf": admin},
        files={"recording": ("p.wav", _wav(), "audio/wav")},
    )
    assert r.status_code == 404
    uploads = db.data_dir / "prompt_uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert not any(action == "ivr.prompt.upload" for action, _target in actions(db))


def test_seats_list_and_close_out_of_hours_items(client, web, db):
    with session_scope(db) as s:
        s.add(
            CallerRequest(kind="callback", caller="+8613919310001", did="96346", created_at=datetime.now(UTC))
        )
        s.commit()
    assert web.login(client, "seat1001").status_code == 303
    items = client.get("/api/caller-requests").json()["items"]
    assert [(i["kind"], i["caller"]) for i in items] == [("callback", "+8613919310001")]
    token = csrf_from(client.get("/console").text)
    assert client.post(f"/api/caller-requests/{items[0]['id']}/done").status_code == 403  # no CSRF header
    r = client.post(f"/api/caller-requests/{items[0]['id']}/done", headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and client.get("/api/caller-requests").json()["items"] == []
    assert ("caller_request.done", str(items[0]["id"])) in actions(db)
    assert client.get("/admin/ivr").status_code == 403
