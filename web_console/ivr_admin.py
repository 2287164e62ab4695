"""The voice menu and opening hours (administrators), and the out-of-hours items (seats).
Access rules: ``access.ROUTE_ROLES``. Every change is audited and applied to Asterisk by the
engine (dialplan reload only: calls in progress go on)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from asterisk_conf.ivr_render import VOICEMAIL_DIR
from asterisk_conf.ivr_sounds import UploadError, store_upload
from callcenter.accounts.models import Account
from callcenter.audit.service import record as audit
from callcenter.bus import EventBus
from callcenter.clock import china_now
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.models import CallQueue, ServiceNumber
from callcenter.ivr import service
from callcenter.ivr.models import CallerRequest, IvrOption, ServiceHours
from callcenter.messages import ConfigRequest
from web_console.deps import (
    BusDep,
    CsrfChecked,
    CurrentAccount,
    RowId,
    SettingsDep,
    open_db,
    protected_router,
)
from web_console.render import render, show_errors_on
from web_console.sessions import client_ip

log = logging.getLogger(__name__)

DIALPLAN_ONLY = ["pbx_config.so"]

router = protected_router()


def _page(
    request: Request, account: Account, status_code: int = 200, error: str = "", done: str = ""
) -> Response:
    settings = request.app.state.settings
    with open_db(request) as db:
        numbers = list(db.exec(select(ServiceNumber).order_by(ServiceNumber.number)))
        options = list(db.exec(select(IvrOption).order_by(IvrOption.number, IvrOption.digit)))
        hours = {h.number: h for h in db.exec(select(ServiceHours))}
        queues = list(db.exec(select(CallQueue.name).order_by(CallQueue.name)))
    return render(
        request,
        "admin_ivr.html",
        status_code=status_code,
        account=account,
        numbers=numbers,
        options=options,
        hours=hours,
        hours_text={n: service.hours_text(h) for n, h in hours.items()},
        queues=queues,
        schedules=service.SCHEDULES,
        now=china_now(settings),
        error=error,
        done=done,
    )


async def _apply(bus: EventBus, reason: str) -> None:
    request = ConfigRequest(reason=reason, modules=list(DIALPLAN_ONLY))
    await bus.publish(request.topic, request.to_json())


def _show_errors(request: Request, account: Account) -> None:
    """A refused change (``MenuError``, ``UploadError``) shows the page again with the reason."""
    show_errors_on(request, lambda exc, message: _page(request, account, exc.status, error=message))


@router.get("/admin/ivr")
def admin_ivr(request: Request, account: CurrentAccount) -> Response:
    return _page(request, account)


def _save_option(settings: Settings, actor: Account, ip: str, form: dict[str, str]) -> str:
    number, digit = form["number"], form["digit"]
    with session_scope(settings) as db:
        if db.exec(select(ServiceNumber).where(ServiceNumber.number == number)).first() is None:
            raise service.MenuError(f"unknown service number {number!r}")
        queues = set(db.exec(select(CallQueue.name)))
        service.check_option(digit, form["queue_name"], queues, form["prompt_text"])
        option = db.exec(
            select(IvrOption).where(IvrOption.number == number, IvrOption.digit == digit)
        ).first()
        before = option.model_dump(exclude={"id"}) if option else None
        option = option or IvrOption(number=number, digit=digit, queue_name=form["queue_name"])
        option.queue_name = form["queue_name"]
        option.category = form["category"].strip()[:64]
        option.label = form["label"].strip()[:64]
        option.prompt_text = service.clean_prompt(form["prompt_text"])
        db.add(option)
        audit(
            db,
            actor.username,
            "ivr.option.save",
            f"{number}/{digit}",
            role=actor.role,
            ip=ip,
            before=before,
            after=option.model_dump(exclude={"id"}),
        )
        db.commit()
    return f"{number}/{digit}"


@router.post("/admin/ivr/options", dependencies=[CsrfChecked])
async def admin_ivr_save_option(
    request: Request,
    account: CurrentAccount,
    bus: BusDep,
    settings: SettingsDep,
    number: str = Form("", max_length=32),
    digit: str = Form("", max_length=1),
    queue_name: str = Form("", max_length=32),
    category: str = Form("", max_length=64),
    label: str = Form("", max_length=64),
    prompt_text: str = Form("", max_length=200),
) -> Response:
    form = {
        "number": number.strip(),
        "digit": digit.strip(),
        "queue_name": queue_name.strip(),
        "category": category,
        "label": label,
        "prompt_text": prompt_text,
    }
    _show_errors(request, account)
    key = await run_in_threadpool(_save_option, settings, account, client_ip(request), form)
    await _apply(bus, f"menu key {key}")
    return _page(request, account, done=key)


@router.post("/admin/ivr/options/{option_id}/delete", dependencies=[CsrfChecked])
async def admin_ivr_delete_option(
    request: Request, option_id: RowId, account: CurrentAccount, bus: BusDep
) -> Response:
    with open_db(request) as db:
        option = db.get(IvrOption, option_id)
        if option is None:
            return _page(request, account, 404, error="unknown menu key")
        target = f"{option.number}/{option.digit}"
        audit(
            db,
            account.username,
            "ivr.option.delete",
            target,
            role=account.role,
            ip=client_ip(request),
            before=option.model_dump(exclude={"id"}),
        )
        db.delete(option)
        db.commit()
    await _apply(bus, f"menu key {target} deleted")
    return _page(request, account, done=target)


@router.post("/admin/ivr/options/{option_id}/upload", dependencies=[CsrfChecked])
async def admin_ivr_upload(
    request: Request,
    option_id: RowId,
    account: CurrentAccount,
    bus: BusDep,
    recording: UploadFile | None = File(None),
) -> Response:
    """A recorded prompt instead of the spoken text (a WAV file; converted to 8 kHz mono)."""
    settings = request.app.state.settings
    if recording is None:
        return _page(request, account, 422, error="no file")
    # An upload for a menu key that does not exist is refused before anything is read or kept.
    with open_db(request) as db:
        if db.get(IvrOption, option_id) is None:
            return _page(request, account, 404, error="unknown menu key")
    data = await recording.read(settings.prompt_upload_max_bytes + 1)
    _show_errors(request, account)
    try:
        sha = await run_in_threadpool(store_upload, settings, data)
    except UploadError as exc:
        log.warning("prompt upload for menu key %s refused: %s", option_id, exc)
        raise
    with open_db(request) as db:
        option = db.get(IvrOption, option_id)
        if option is None:
            return _page(request, account, 404, error="unknown menu key")
        option.prompt_upload = sha
        db.add(option)
        target = f"{option.number}/{option.digit}"
        audit(
            db,
            account.username,
            "ivr.prompt.upload",
            target,
            role=account.role,
            ip=client_ip(request),
            sha256=sha,
        )
        db.commit()
    await _apply(bus, f"menu key {target} recording")
    return _page(request, account, done=target)


@router.post("/admin/ivr/hours", dependencies=[CsrfChecked])
async def admin_ivr_hours(
    request: Request,
    account: CurrentAccount,
    bus: BusDep,
    number: str = Form("", max_length=32),
    schedule: str = Form("", max_length=16),
    open_time: str = Form("", max_length=5),
    close_time: str = Form("", max_length=5),
    closed_text: str = Form("", max_length=300),
) -> Response:
    number = number.strip()
    _show_errors(request, account)
    service.check_hours(schedule, open_time, close_time)
    with open_db(request) as db:
        if db.exec(select(ServiceNumber).where(ServiceNumber.number == number)).first() is None:
            return _page(request, account, 422, error=f"unknown service number {number!r}")
        hours = service.hours_for(db, number)
        before = hours.model_dump(exclude={"id"}) if hours else None
        hours = hours or ServiceHours(number=number)
        hours.schedule = schedule
        if schedule != "always":
            hours.open_time, hours.close_time = open_time, close_time
        hours.closed_text = service.clean_prompt(closed_text)[:300]
        db.add(hours)
        audit(
            db,
            account.username,
            "ivr.hours.save",
            number,
            role=account.role,
            ip=client_ip(request),
            before=before,
            after=hours.model_dump(exclude={"id"}),
        )
        db.commit()
    await _apply(bus, f"hours {number}")
    return _page(request, account, done=number)


# --- out-of-hours items for the seats ------------------------------------------------------------


@router.get("/api/caller-requests")
def caller_requests(request: Request, account: CurrentAccount) -> Response:
    """Voicemails and callback requests left out of hours and not yet handled, oldest first."""
    with open_db(request) as db:
        items: list[dict[str, Any]] = service.open_requests(db)
    return JSONResponse({"items": items})


@router.post("/api/caller-requests/{request_id}/done", dependencies=[CsrfChecked])
async def caller_request_done(request: Request, request_id: RowId, account: CurrentAccount) -> Response:
    with open_db(request) as db:
        item = db.get(CallerRequest, request_id)
        if item is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        if item.done_at is None:
            item.done_at = datetime.now(UTC)
            item.done_by = account.username
            db.add(item)
            audit(
                db,
                account.username,
                "caller_request.done",
                str(request_id),
                role=account.role,
                ip=client_ip(request),
            )
            db.commit()
    return JSONResponse({"id": request_id, "done": True})


@router.get("/api/caller-requests/{request_id}/recording")
def caller_request_recording(request: Request, request_id: RowId, account: CurrentAccount) -> Response:
    """The voicemail itself (a resident's voice: every listen is audited)."""
    settings = request.app.state.settings
    with session_scope(settings) as db:
        item = db.get(CallerRequest, request_id)
        if item is None or not item.recording or "/" in item.recording:
            return JSONResponse({"error": "not found"}, status_code=404)
        path = settings.asterisk_instance_dir() / "spool" / VOICEMAIL_DIR / item.recording
        if not path.is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        audit(
            db,
            account.username,
            "caller_request.listen",
            str(request_id),
            role=account.role,
            ip=client_ip(request),
        )
        db.commit()
    # A resident's voice: never kept by a browser or a proxy cache.
    return FileResponse(
        path, media_type="audio/wav", filename=item.recording, headers={"Cache-Control": "no-store"}
    )
