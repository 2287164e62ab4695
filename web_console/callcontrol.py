"""Call control from the console: hang up, transfer, click-to-call, queue login/logout, listen-in,
recordings and the callbacks list. Access rules: ``access.ROUTE_ROLES``.

The routes check the session, role and CSRF token and publish a command; the engine checks it
against the live model (a seat acts only on its own call) and talks to Asterisk. Recordings are
served from Asterisk's spool by the call record's file name, never by a path from the request,
and every play or download is audited.
"""

from __future__ import annotations

import secrets
import time

from fastapi import Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from callcenter import messages
from callcenter.accounts.models import Account, QueueMembership, Role
from callcenter.audit.service import record as audit
from callcenter.callcontrol.callbacks import REFERENCE, finish_task, waiting_callbacks
from callcenter.callcontrol.recordings import RECORDING, recordings_dir
from callcenter.callcontrol.service import (
    EXT,
    LINKEDID,
    QUEUE,
    SPY_MODES,
    TRANSFER_KINDS,
    TRANSFER_MODES,
)
from callcenter.calls.models import CallRecord
from callcenter.clock import utcnow
from callcenter.dialout import policy
from callcenter.dialout.service import DialoutRefused, note_refusal
from callcenter.directory.models import CallQueue
from callcenter.messages import CallControlCommand, sign
from web_console.deps import CsrfChecked, CurrentAccount, RowId, open_db, protected_router
from web_console.sessions import client_ip

router = protected_router()


async def _command(request: Request, account: Account, action: str, **fields: str) -> Response:
    """Publish a command for the engine with the account's own extension (never the body's)."""
    ext = account.extension or ""
    if not EXT.fullmatch(ext):
        return JSONResponse({"error": "no extension"}, status_code=409)
    request_id = secrets.token_hex(8)
    command = CallControlCommand(
        action=action, ext=ext, request_id=request_id, actor=account.username, **fields
    )
    if action in ("transfer", "dial"):
        # Calls leaving the hotline (transfers, outside numbers) are on the audit log.
        target = str(fields.get("target") or fields.get("number") or "")[:40]

        def log_it() -> None:
            with open_db(request) as db:
                audit(
                    db,
                    account.username,
                    f"call.{action}",
                    target=target,
                    role=account.role,
                    ip=client_ip(request),
                    **{k: str(v)[:40] for k, v in fields.items() if k not in ("target", "role", "ip")},
                )
                db.commit()

        await run_in_threadpool(log_it)
    # Signed, so the engine can tell a web worker's command from anything else on the bus.
    payload = sign(command.to_json(), request.app.state.settings.bus_secret, time.time())
    await request.app.state.bus.publish(command.topic, payload)
    return JSONResponse({"accepted": True, "request_id": request_id}, status_code=202)


class HangupRequest(BaseModel):
    linkedid: str = Field(max_length=40)


class TransferRequest(BaseModel):
    linkedid: str = Field(max_length=40)
    mode: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    target: str = Field(default="", max_length=40)


class DialRequest(BaseModel):
    number: str = Field(max_length=32)


class QueueLoginRequest(BaseModel):
    queue: str = Field(max_length=32)
    login: bool


class SpyRequest(BaseModel):
    ext: str = Field(max_length=16)
    mode: str = Field(max_length=16)


@router.post("/api/call/hangup", dependencies=[CsrfChecked])
async def api_hangup(request: Request, body: HangupRequest, account: CurrentAccount) -> Response:
    if not LINKEDID.fullmatch(body.linkedid):
        return JSONResponse({"error": "bad call id"}, status_code=422)
    return await _command(request, account, "hangup", linkedid=body.linkedid)


@router.post("/api/call/transfer", dependencies=[CsrfChecked])
async def api_transfer(request: Request, body: TransferRequest, account: CurrentAccount) -> Response:
    if (
        not LINKEDID.fullmatch(body.linkedid)
        or body.mode not in TRANSFER_MODES
        or body.kind not in TRANSFER_KINDS
    ):
        return JSONResponse({"error": "bad transfer"}, status_code=422)
    return await _command(
        request,
        account,
        "transfer",
        linkedid=body.linkedid,
        mode=body.mode,
        kind=body.kind,
        target=body.target,
    )


@router.post("/api/call/dial", dependencies=[CsrfChecked])
async def api_dial(request: Request, body: DialRequest, account: CurrentAccount) -> Response:
    return await _command(request, account, "dial", number=body.number)


@router.get("/api/seat/queues")
def api_seat_queues(request: Request, account: CurrentAccount) -> JSONResponse:
    """Every queue, and which the seat answers by assignment (static: always logged in)."""
    with open_db(request) as db:
        queues = db.exec(select(CallQueue).order_by(CallQueue.name)).all()
        static = set(
            db.exec(select(QueueMembership.queue_name).where(QueueMembership.account_id == account.id))
        )
    return JSONResponse(
        [
            {"name": q.name, "title": q.title, "static": q.name in static}
            for q in queues
            if QUEUE.fullmatch(q.name)
        ],
        headers={"Cache-Control": "no-store"},
    )


@router.post("/api/seat/queues", dependencies=[CsrfChecked])
async def api_seat_queue_login(
    request: Request, body: QueueLoginRequest, account: CurrentAccount
) -> Response:
    if not QUEUE.fullmatch(body.queue):
        return JSONResponse({"error": "bad queue"}, status_code=422)
    return await _command(request, account, "queue_login" if body.login else "queue_logout", queue=body.queue)


@router.post("/api/spy", dependencies=[CsrfChecked])
async def api_spy(request: Request, body: SpyRequest, account: CurrentAccount) -> Response:
    """Listen, whisper or barge into a seat's live call: the supervisor's phone rings first."""
    if not EXT.fullmatch(body.ext) or body.mode not in SPY_MODES:
        return JSONResponse({"error": "bad request"}, status_code=422)

    def log_it() -> None:
        with open_db(request) as db:
            audit(
                db,
                account.username,
                f"call.{body.mode}",
                target=f"seat:{body.ext}",
                role=account.role,
                ip=client_ip(request),
            )
            db.commit()

    await run_in_threadpool(log_it)
    return await _command(request, account, "spy", target_ext=body.ext, mode=body.mode)


@router.get("/api/recordings/{linkedid}")
def api_recording(
    request: Request, linkedid: str, account: CurrentAccount, download: bool = Query(False)
) -> Response:
    """A call's recording: a seat only its own calls, supervisors and administrators any call."""
    if not LINKEDID.fullmatch(linkedid):
        return JSONResponse({"error": "no such call"}, status_code=404)
    settings = request.app.state.settings
    with open_db(request) as db:
        rec = db.exec(select(CallRecord).where(CallRecord.linkedid == linkedid)).first()
        if rec is None:
            return JSONResponse({"error": "no such call"}, status_code=404)
        if account.role == Role.SEAT.value and (not account.extension or rec.seat != account.extension):
            return JSONResponse({"error": "not your call"}, status_code=403)
        if not RECORDING.fullmatch(rec.recording or ""):
            return JSONResponse({"error": "no recording"}, status_code=404)
        path = recordings_dir(settings) / rec.recording
        if not path.is_file():
            return JSONResponse({"error": "recording gone"}, status_code=410)
        action = "recording.download" if download else "recording.play"
        audit(
            db, account.username, action, target=f"call:{linkedid}", role=account.role, ip=client_ip(request)
        )
        db.commit()
    return FileResponse(
        path,
        media_type="audio/wav",
        filename=f"call-{linkedid}.wav",
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/callbacks")
def api_callbacks(request: Request, account: CurrentAccount) -> JSONResponse:
    """Callers waiting for a callback, oldest first."""
    return JSONResponse(waiting_callbacks(request.app.state.settings), headers={"Cache-Control": "no-store"})


@router.post("/api/callbacks/{item_id}/done", dependencies=[CsrfChecked])
def api_callback_done(request: Request, item_id: RowId, account: CurrentAccount) -> JSONResponse:
    """A seat has dealt with a task the automatic calls left (called the resident by hand)."""
    with open_db(request) as db:
        if not finish_task(db, item_id, account.extension or account.username, utcnow()):
            return JSONResponse({"error": "no such task"}, status_code=404)
        audit(
            db, account.username, "callback.task_done", str(item_id), role=account.role, ip=client_ip(request)
        )
        db.commit()
    return JSONResponse({"id": item_id, "done": True})


class FollowUpRequest(BaseModel):
    phone: str = Field(max_length=40)
    reference: str = Field(max_length=64)


@router.post("/api/followups", dependencies=[CsrfChecked])
async def api_followup(request: Request, body: FollowUpRequest, account: CurrentAccount) -> Response:
    """A supervisor asks for a follow-up call (回访) by hand; dispatch does it on the bus
    (``followup.request``) when an order is resolved."""
    if not REFERENCE.fullmatch(body.reference):
        return JSONResponse({"error": "bad phone or reference"}, status_code=422)
    decision = policy.check(body.phone, request.app.state.settings)
    if not decision.allowed:

        def log_refusal() -> None:
            with open_db(request) as db:
                note_refusal(db, decision, "followup", body.phone, account.username, reference=body.reference)
                db.commit()

        await run_in_threadpool(log_refusal)
        raise DialoutRefused(f"number refused: {decision.reason}", code=decision.reason)

    def log_it() -> None:
        with open_db(request) as db:
            audit(
                db,
                account.username,
                "followup.request",
                target=body.reference,
                role=account.role,
                ip=client_ip(request),
            )
            db.commit()

    await run_in_threadpool(log_it)
    request_followup = messages.FollowUpRequest(phone=body.phone, reference=body.reference)
    await request.app.state.bus.publish(request_followup.topic, request_followup.to_json())
    return JSONResponse({"accepted": True}, status_code=202)
