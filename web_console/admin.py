"""Administration: accounts (with temporary passwords) and the audit log.
Access rules: ``views.ROUTE_ROLES``."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from asterisk_conf.apply import CONFIG_TOPIC
from callcenter.accounts import flows
from callcenter.accounts.models import Account, Role
from callcenter.audit.service import search as search_audit
from callcenter.config import CHINA_TZ
from callcenter.database import session_scope
from web_console.views import authorize, csrf_ok, forbidden_response, protected, render


def _actor(request: Request, account: Account) -> flows.Actor:
    return flows.Actor(account.username, account.role, request.client.host if request.client else "")


def _accounts_page(request: Request, account: Account, status_code: int = 200, **notice: Any) -> Response:
    from callcenter.accounts.models import QueueMembership
    from callcenter.directory.models import CallQueue

    with session_scope(request.app.state.settings) as db:
        accounts = list(db.exec(select(Account).order_by(Account.role, Account.username)))
        queues_of: dict[int, dict[str, int]] = {}
        for m in db.exec(select(QueueMembership).order_by(QueueMembership.queue_name)):
            queues_of.setdefault(m.account_id, {})[m.queue_name] = m.penalty
        queues = list(db.exec(select(CallQueue.name).order_by(CallQueue.name)))
    return render(
        request,
        "admin_accounts.html",
        status_code=status_code,
        account=account,
        accounts=accounts,
        queues_of=queues_of,
        queues=queues,
        skill_levels=flows.SKILL_LEVELS,
        roles=[r.value for r in Role],
        **({"error": None, "password": None, "created": None, "reset": None} | notice),
    )


async def _run_flow(request: Request, account: Account, csrf: str, flow, *args) -> Any:
    """One account flow for an administrator's form: the CSRF check, the flow on a thread, and
    the page again with the flow's own message (422) when it refused. A Response means stop."""
    if not csrf_ok(request.session, csrf):
        return forbidden_response(request)
    try:
        with session_scope(request.app.state.settings) as db:
            return await run_in_threadpool(flow, db, _actor(request, account), *args)
    except flows.AccountError as exc:
        return _accounts_page(request, account, 422, error=str(exc))


async def _telephony_changed(request: Request, reason: str) -> None:
    """Seats are SIP endpoints and queue members: the engine re-renders and reloads Asterisk."""
    await request.app.state.bus.publish(CONFIG_TOPIC, {"reason": reason})


@protected.get("/admin/accounts")
def admin_accounts(request: Request, account: Account = Depends(authorize)) -> Response:
    return _accounts_page(request, account)


@protected.post("/admin/accounts")
async def admin_create_account(
    request: Request,
    account: Account = Depends(authorize),
    csrf: str = Form(""),
    username: str = Form("", max_length=64),
    display_name: str = Form("", max_length=64),
    role: str = Form("", max_length=16),
    extension: str = Form("", max_length=16),
    queues: list[str] = Form([]),
) -> Response:
    result = await _run_flow(
        request,
        account,
        csrf,
        flows.create_account,
        username.strip(),
        display_name,
        role,
        extension.strip(),
        queues,
    )
    if isinstance(result, Response):
        return result
    created, password = result
    if created.role == Role.SEAT:
        await _telephony_changed(request, f"seat {created.extension} created")
    return _accounts_page(request, account, 201, created=created.username, password=password)


@protected.post("/admin/accounts/{account_id}/active")
async def admin_set_active(
    request: Request,
    account_id: int,
    account: Account = Depends(authorize),
    csrf: str = Form(""),
    active: bool = Form(...),
) -> Response:
    changed = await _run_flow(request, account, csrf, flows.set_active, account_id, active)
    if isinstance(changed, Response):
        return changed
    if changed.role == Role.SEAT:
        await _telephony_changed(request, f"seat {changed.extension} {'enabled' if active else 'disabled'}")
    return _accounts_page(request, account)


@protected.post("/admin/accounts/{account_id}/password")
async def admin_reset_password(
    request: Request, account_id: int, account: Account = Depends(authorize), csrf: str = Form("")
) -> Response:
    result = await _run_flow(request, account, csrf, flows.reset_password, account_id)
    if isinstance(result, Response):
        return result
    changed, password = result
    return _accounts_page(request, account, reset=changed.username, password=password)


@protected.post("/admin/accounts/{account_id}/queues")
async def admin_set_queues(
    request: Request,
    account_id: int,
    account: Account = Depends(authorize),
    csrf: str = Form(""),
    skills: list[str] = Form([]),
) -> Response:
    try:
        parsed = flows.parse_skills(skills)
    except flows.AccountError as exc:
        return _accounts_page(request, account, status_code=400, error=str(exc))
    changed = await _run_flow(request, account, csrf, flows.set_queues, account_id, parsed)
    if isinstance(changed, Response):
        return changed
    await _telephony_changed(request, f"seat {changed.extension} queues")
    return _accounts_page(request, account)


@protected.get("/admin/audit")
def admin_audit(
    request: Request,
    account: Account = Depends(authorize),
    actor: str = Query("", max_length=64),
    action: str = Query("", max_length=48),
    target: str = Query("", max_length=128),
) -> Response:
    with session_scope(request.app.state.settings) as db:
        entries = search_audit(db, actor=actor, action=action, target=target, limit=500)
    return render(
        request,
        "admin_audit.html",
        account=account,
        entries=entries,
        china=CHINA_TZ,
        query={"actor": actor, "action": action, "target": target},
    )
