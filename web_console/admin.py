"""Administration: accounts (with temporary passwords) and the audit log.
Access rules: ``access.ROUTE_ROLES``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts import flows
from callcenter.accounts.models import Account, QueueMembership, Role
from callcenter.audit.service import search as search_audit
from callcenter.config import CHINA_TZ, Settings
from callcenter.directory.models import CallQueue
from callcenter.messages import ConfigRequest
from web_console.deps import (
    BusDep,
    CsrfChecked,
    CurrentAccount,
    DbSession,
    RowId,
    SettingsDep,
    open_db,
    protected_router,
)
from web_console.render import render, show_errors_on
from web_console.sessions import client_ip

router = protected_router()


def _actor(request: Request, account: Account) -> flows.Actor:
    return flows.Actor(account.username, account.role, client_ip(request))


def _accounts_page(request: Request, account: Account, status_code: int = 200, **notice: Any) -> Response:
    with open_db(request) as db:
        accounts = list(db.exec(select(Account).order_by(Account.role, Account.username)))
        queues_of: dict[int, dict[str, int]] = {}
        for m in db.exec(select(QueueMembership).order_by(QueueMembership.queue_name)):
            queues_of.setdefault(m.account_id, {})[m.queue_name] = m.penalty
        queues = list(db.exec(select(CallQueue.name).order_by(CallQueue.name)))
    response = render(
        request,
        "admin_accounts.html",
        status_code=status_code,
        account=account,
        accounts=accounts,
        queues_of=queues_of,
        queues=queues,
        skill_levels=flows.SKILL_LEVELS,
        roles=[r.value for r in Role],
        **({"error": None, "password": None, "created": None, "reset": None, "sip": None} | notice),
    )
    # It may show a password once: no cache keeps a copy of it.
    response.headers["Cache-Control"] = "no-store"
    return response


def sip_provisioning(settings: Settings, request: Request, seat: Account, password: str) -> dict[str, Any]:
    """What an administrator types into a seat's phone: shown once, with the new password."""
    server = settings.sip_server_name or settings.sip_external_signaling_address or settings.sip_host
    if server in ("0.0.0.0", "::", ""):
        server = request.url.hostname or "127.0.0.1"  # every interface: the address the admin used
    transports = [("UDP", settings.sip_port)]
    if settings.sip_tcp:
        transports.append(("TCP", settings.sip_port))
    if settings.sip_tls_files() is not None:
        transports.append(("TLS", settings.sip_tls_port))
    return {
        "user": seat.username,
        "extension": seat.extension,
        "server": server,
        "transports": transports,
        "username": seat.endpoint,
        "realm": seat.sip_realm,
        "password": password,
    }


async def _run_flow(request: Request, account: Account, flow: Callable[..., Any], *args: Any) -> Any:
    """One account flow for an administrator's form, on a thread; a refusal (``AccountError``)
    shows the page again with the flow's own message (422)."""
    show_errors_on(request, lambda exc, message: _accounts_page(request, account, 422, error=message))
    with open_db(request) as db:
        return await run_in_threadpool(flow, db, _actor(request, account), *args)


async def _telephony_changed(bus: BusDep, reason: str) -> None:
    """Seats are SIP endpoints and queue members: the engine re-renders and reloads Asterisk."""
    request = ConfigRequest(reason=reason)
    await bus.publish(request.topic, request.to_json())


@router.get("/admin/accounts")
def admin_accounts(request: Request, account: CurrentAccount) -> Response:
    return _accounts_page(request, account)


@router.post("/admin/accounts", dependencies=[CsrfChecked])
async def admin_create_account(
    request: Request,
    account: CurrentAccount,
    bus: BusDep,
    settings: SettingsDep,
    username: str = Form("", max_length=64),
    display_name: str = Form("", max_length=64),
    role: str = Form("", max_length=16),
    extension: str = Form("", max_length=16),
    queues: list[str] = Form([]),
) -> Response:
    created, password, phone_password = await _run_flow(
        request,
        account,
        flows.create_account,
        username.strip(),
        display_name,
        role,
        extension.strip(),
        queues,
        settings.sip_realm,
    )
    sip = None
    if created.role == Role.SEAT:
        await _telephony_changed(bus, f"seat {created.extension} created")
        sip = sip_provisioning(settings, request, created, phone_password)
    return _accounts_page(request, account, 201, created=created.username, password=password, sip=sip)


@router.post("/admin/accounts/{account_id}/active", dependencies=[CsrfChecked])
async def admin_set_active(
    request: Request,
    account_id: RowId,
    account: CurrentAccount,
    bus: BusDep,
    active: bool = Form(...),
) -> Response:
    changed = await _run_flow(request, account, flows.set_active, account_id, active)
    if changed.role == Role.SEAT:
        await _telephony_changed(bus, f"seat {changed.extension} {'enabled' if active else 'disabled'}")
    return _accounts_page(request, account)


@router.post("/admin/accounts/{account_id}/password", dependencies=[CsrfChecked])
async def admin_reset_password(request: Request, account_id: RowId, account: CurrentAccount) -> Response:
    changed, password = await _run_flow(request, account, flows.reset_password, account_id)
    return _accounts_page(request, account, reset=changed.username, password=password)


@router.post("/admin/accounts/{account_id}/phone", dependencies=[CsrfChecked])
async def admin_set_phone(
    request: Request,
    account_id: RowId,
    account: CurrentAccount,
    bus: BusDep,
    settings: SettingsDep,
    phone: str = Form("", max_length=8),
) -> Response:
    changed = await _run_flow(request, account, flows.set_phone, account_id, phone, settings.sip_realm)
    await _telephony_changed(bus, f"seat {changed.extension} phone {changed.phone}")
    return _accounts_page(request, account)


@router.post("/admin/accounts/{account_id}/sip-password", dependencies=[CsrfChecked])
async def admin_reset_sip_password(
    request: Request, account_id: RowId, account: CurrentAccount, bus: BusDep, settings: SettingsDep
) -> Response:
    """A new SIP password for a seat's phones, shown once with the rest of the phone's settings."""
    changed, password = await _run_flow(
        request, account, flows.reset_sip_password, account_id, settings.sip_realm
    )
    await _telephony_changed(bus, f"seat {changed.extension} SIP password")
    return _accounts_page(request, account, sip=sip_provisioning(settings, request, changed, password))


@router.post("/admin/accounts/{account_id}/queues", dependencies=[CsrfChecked])
async def admin_set_queues(
    request: Request,
    account_id: RowId,
    account: CurrentAccount,
    bus: BusDep,
    skills: list[str] = Form([]),
) -> Response:
    # A skill list that cannot be read is a bad request (400), before any flow runs.
    show_errors_on(request, lambda exc, message: _accounts_page(request, account, 400, error=message))
    parsed = flows.parse_skills(skills)
    changed = await _run_flow(request, account, flows.set_queues, account_id, parsed)
    await _telephony_changed(bus, f"seat {changed.extension} queues")
    return _accounts_page(request, account)


@router.get("/admin/audit")
def admin_audit(
    request: Request,
    account: CurrentAccount,
    db: DbSession,
    actor: str = Query("", max_length=64),
    action: str = Query("", max_length=48),
    target: str = Query("", max_length=128),
) -> Response:
    entries = search_audit(db, actor=actor, action=action, target=target, limit=500)
    return render(
        request,
        "admin_audit.html",
        account=account,
        entries=entries,
        china=CHINA_TZ,
        query={"actor": actor, "action": action, "target": target},
    )
