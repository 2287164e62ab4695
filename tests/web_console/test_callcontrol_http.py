"""Call-control routes at the door: CSRF, the account's own extension, checked
input, what reaches the bus, recordings served only by the call record's name."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from callcenter.audit.models import AuditEntry
from callcenter.callcontrol.recordings import recordings_dir
from callcenter.calls.models import CallRecord
from callcenter.database import session_scope

from .conftest import csrf_from, login


def _token(client) -> str:
    return csrf_from(client.get("/login", follow_redirects=True).text)


def test_commands_carry_the_accounts_own_extension(client, bus, db):
    sub = bus.subscribe("engine.callcontrol")
    assert login(client, "seat1001").status_code == 303
    headers = {"X-CSRF-Token": _token(client)}
    r = client.post(
        "/api/call/transfer",
        json={"linkedid": "1700000000.12", "mode": "blind", "kind": "seat", "target": "1002", "ext": "1002"},
        headers=headers,
    )
    assert r.status_code == 202
    command = sub.queue.get_nowait()[1]
    assert command["ext"] == "1001" and command["actor"] == "seat1001" and command["target"] == "1002"
    with session_scope(db) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "call.transfer")).one()
    assert entry.actor == "seat1001" and entry.target == "1002" and entry.detail["kind"] == "seat"
    # Checked at the door: bad ids and modes, no CSRF token.
    assert client.post("/api/call/hangup", json={"linkedid": "1;Hangup"}, headers=headers).status_code == 422
    bad = {"linkedid": "1700000000.12", "mode": "sideways", "kind": "seat", "target": "1002"}
    assert client.post("/api/call/transfer", json=bad, headers=headers).status_code == 422
    assert client.post("/api/call/hangup", json={"linkedid": "1700000000.12"}).status_code == 403
    assert (
        client.post(
            "/api/seat/queues", json={"queue": "Bad Queue", "login": True}, headers=headers
        ).status_code
        == 422
    )
    assert sub.queue.empty()


def test_an_account_without_a_phone_cannot_place_calls(client, bus):
    assert login(client, "admin").status_code == 303
    r = client.post(
        "/api/call/dial", json={"number": "13919310001"}, headers={"X-CSRF-Token": _token(client)}
    )
    assert r.status_code == 409 and r.json() == {"error": "no extension"}


def test_recordings_only_by_the_call_record_and_only_ones_own(client, db):
    folder = recordings_dir(db)
    folder.mkdir(parents=True)
    (folder / "1700000000.12.wav").write_bytes(b"RIFF....WAVE")
    with session_scope(db) as s:
        for linkedid, seat, recording in (
            ("1700000000.12", "1001", "1700000000.12.wav"),
            ("1700000000.13", "1002", "1700000000.12.wav"),
            ("1700000000.14", "1001", "../../secrets.json"),
        ):
            s.add(CallRecord(linkedid=linkedid, seat=seat, recording=recording, started_at=datetime.now(UTC)))
        s.commit()
    assert login(client, "seat1001").status_code == 303
    r = client.get("/api/recordings/1700000000.12")
    assert r.status_code == 200 and r.content == b"RIFF....WAVE" and r.headers["content-type"] == "audio/wav"
    assert client.get("/api/recordings/1700000000.13").status_code == 403  # seat 1002's call
    assert client.get("/api/recordings/1700000000.14").status_code == 404  # not a recording name
    assert client.get("/api/recordings/..%2F..%2Fsecrets.json").status_code == 404
    assert client.get("/api/recordings/1700000000.99").status_code == 404
    with session_scope(db) as s:
        plays = s.exec(select(AuditEntry).where(AuditEntry.action == "recording.play")).all()
    assert [(e.actor, e.target) for e in plays] == [("seat1001", "call:1700000000.12")]


def test_followups_by_supervisors_only(client, bus):
    sub = bus.subscribe("followup.request")
    assert login(client, "seat1001").status_code == 303
    r = client.post(
        "/api/followups",
        json={"phone": "13919310001", "reference": "AN-1"},
        headers={"X-CSRF-Token": _token(client)},
    )
    assert r.status_code == 403
    client.cookies.clear()
    assert login(client, "super").status_code == 303
    headers = {"X-CSRF-Token": _token(client)}
    bad = {"phone": "13919310001", "reference": "AN 1; drop"}
    assert client.post("/api/followups", json=bad, headers=headers).status_code == 422
    r = client.post("/api/followups", json={"phone": "13919310001", "reference": "AN-1"}, headers=headers)
    assert r.status_code == 202
    assert sub.queue.get_nowait()[1] == {"phone": "13919310001", "reference": "AN-1"}


def test_a_followup_to_a_number_the_policy_refuses_is_explained_and_audited(client, bus, db):
    sub = bus.subscribe("followup.request")
    assert login(client, "super").status_code == 303
    headers = {"X-CSRF-Token": _token(client)}
    for phone, reason in (
        ("110", "emergency"),
        ("+882164000000", "international"),
        ("１２３４５", "bad_characters"),
    ):
        r = client.post("/api/followups", json={"phone": phone, "reference": "AN-7"}, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == reason, r.json()
        assert r.json()["message"] != f"errors.dialout.{reason}"  # a sentence from the catalogue
    zh = client.post("/api/followups", json={"phone": "120", "reference": "AN-7"}, headers=headers).json()
    assert "紧急" in zh["message"]
    assert sub.queue.empty()
    with session_scope(db) as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.action == "dialout.refused")).all()
    assert [(e.actor, e.target, e.detail["reason"]) for e in entries][:2] == [
        ("super", "110", "emergency"),
        ("super", "+882164000000", "international"),
    ]
