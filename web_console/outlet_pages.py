"""The outlet's mobile pages: its open orders (outlet accounts) and one order with the outlet's
actions and an optional photo, either signed in or through a signed link that names one order and
one outlet (no login: the token is the key; ``access.PUBLIC_ROUTES``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter.accounts.models import Account, Role
from callcenter.database import session_scope
from callcenter.directory.models import Outlet
from callcenter.errors import UserError
from dispatch import attachments, links
from dispatch.actors import Actor
from dispatch.errors import DispatchError
from dispatch.flows import Requester, act_on_order
from dispatch.models import OrderAttachment, Status, WorkOrder
from dispatch.queries import history_view, order_view, order_views
from web_console.deps import CsrfChecked, CurrentAccount, RowId, check_csrf, open_db, protected_router
from web_console.orders_pages import form_fields, transition_args
from web_console.render import render, show_errors_on
from web_console.sessions import client_ip, csrf_token

router = protected_router()
public = APIRouter()  # the signed outlet links: no session, the token is the key

OUTLET_ACTIONS = ("签收", "办理", "办结", "退单", "延期")


@router.get("/outlet")
def outlet_home(request: Request, account: CurrentAccount) -> Response:
    with open_db(request) as db:
        outlet = db.get(Outlet, account.outlet_id) if account.outlet_id else None
        rows: list[WorkOrder] = []
        if outlet is not None:
            rows = list(
                db.exec(
                    select(WorkOrder)
                    .where(
                        WorkOrder.outlet_id == outlet.id,
                        col(WorkOrder.status).in_(Status.AT_OUTLET | {Status.RESOLVED}),
                    )
                    .order_by(col(WorkOrder.deadline_at))
                    .limit(200)
                )
            )
        orders = order_views(db, rows, Actor.of(account))
    return render(request, "outlet_list.html", account=account, outlet=outlet, orders=orders)


def _outlet_page(
    request: Request,
    order_id: RowId,
    actor: Actor,
    post_url: str,
    account: Account | None,
    status_code: int = 200,
    error: str = "",
    done: str = "",
) -> Response:
    with open_db(request) as db:
        order = db.get(WorkOrder, order_id)
        if order is None or actor.outlet_id is None or order.outlet_id != actor.outlet_id:
            return render(request, "error.html", status_code=404)
        view = order_view(db, order, actor)
        view["allowed"] = [a for a in view["allowed"] if a in OUTLET_ACTIONS]
        hist = history_view(db, order_id)
        files = db.exec(select(OrderAttachment).where(OrderAttachment.order_id == order_id)).all()
    return render(
        request,
        "outlet_order.html",
        status_code=status_code,
        account=account,
        order=view,
        history=hist,
        files=[{"id": f.id, "name": f.filename} for f in files],
        post_url=post_url,
        error=error,
        done=done,
        signed=account is None,
    )


async def _outlet_post(
    request: Request,
    order_id: RowId,
    actor: Actor,
    who: str,
    via: str,
    post_url: str,
    account: Account | None,
) -> Response:
    """One outlet action from the page, with an optional photo; the page again, saying what was
    done, or (409) why not."""

    def refused(exc: UserError, message: str) -> Response:
        return _outlet_page(request, order_id, actor, post_url, account, status_code=409, error=message)

    show_errors_on(request, refused)
    form = await request.form()
    fields = form_fields(form)
    action = fields.get("action", "")[:16]
    if action not in OUTLET_ACTIONS:
        raise DispatchError("not an outlet action")
    args = transition_args(fields)
    photo = form.get("photo")
    data = b""
    name = ""
    if photo is not None and not isinstance(photo, str):
        data = await photo.read(attachments.MAX_BYTES + 1)
        name = photo.filename or "photo"
    settings = request.app.state.settings
    ip = client_ip(request)

    def work() -> None:
        with session_scope(settings) as db:
            requester = Requester(who, actor.role, ip, via)
            act_on_order(db, settings, order_id, action, actor, requester, args, attachment=(name, data))
            db.commit()

    await run_in_threadpool(work)
    return _outlet_page(request, order_id, actor, post_url, account, done=action)


@router.get("/outlet/orders/{order_id}")
def outlet_order(request: Request, order_id: RowId, account: CurrentAccount) -> Response:
    return _outlet_page(
        request,
        order_id,
        Actor.of(account),
        f"/outlet/orders/{order_id}",
        account,
        error=request.query_params.get("error", "")[:16],
    )


@router.post("/outlet/orders/{order_id}", dependencies=[CsrfChecked])
async def outlet_order_post(request: Request, order_id: RowId, account: CurrentAccount) -> Response:
    actor = Actor.of(account)
    return await _outlet_post(
        request, order_id, actor, account.username, "outlet page", f"/outlet/orders/{order_id}", account
    )


# --- the same page through a signed link (no login) ----------------------------------------


def _token_actor(request: Request, token: str) -> tuple[int, Actor] | None:
    with open_db(request) as db:
        found = links.read_token(db, request.app.state.settings, token)
    if found is None:
        return None
    order_id, outlet_id = found
    return order_id, Actor(username=f"link:outlet{outlet_id}", role=Role.OUTLET.value, outlet_id=outlet_id)


@public.get("/o/{token}")
def signed_order(request: Request, token: str) -> Response:
    found = _token_actor(request, token)
    if found is None:
        return render(request, "error.html", status_code=403)
    order_id, actor = found
    csrf_token(request.session)
    return _outlet_page(request, order_id, actor, f"/o/{token}", None)


@public.post("/o/{token}")
async def signed_order_post(request: Request, token: str) -> Response:
    found = _token_actor(request, token)
    if found is None:
        return render(request, "error.html", status_code=403)
    await check_csrf(request)
    order_id, actor = found
    return await _outlet_post(request, order_id, actor, actor.username, "signed link", f"/o/{token}", None)
