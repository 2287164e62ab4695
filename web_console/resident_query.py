"""The resident's page (``/q``, no login): the order number and the query code from the receipt
SMS show the order's progress in plain words; a resolved order can be rated there (the 回访).

Plain HTML forms, no script, no external resource: it works in WeChat's in-app browser and on
old phones. Wrong codes are throttled like logins (per order from one address, per address, per
order), and an unknown number reads exactly like a wrong code, so numbers cannot be enumerated.
No CSRF token: every request carries the order's secret itself, so a forged one cannot do
anything its sender could not do directly.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from callcenter.config import Settings
from callcenter.database import session_scope
from dispatch import resident
from dispatch.errors import DispatchError
from dispatch.models import WorkOrder
from web_console.render import render
from web_console.sessions import client_ip

log = logging.getLogger(__name__)
public = APIRouter()

MAX_FIELD = 400  # longer than any order number, code or comment a form sends


def _throttle_keys(request: Request, number: str) -> tuple[str, str]:
    """The login throttle's (name, address) for a lookup: its own namespace, so residents'
    wrong codes never count against a staff login from the same address."""
    return f"q:{resident.normalize_number(number)[:32]}", f"resident-page|{client_ip(request)}"


def _form_page(
    request: Request, status_code: int = 200, error: str = "", minutes: int = 0, number: str = ""
) -> Response:
    return render(
        request,
        "resident_query.html",
        status_code=status_code,
        error=error,
        minutes=minutes,
        number=number,
        order=None,
        steps=[],
        code="",
        rated="",
    )


def _order_page(
    request: Request, order: WorkOrder, steps: list[resident.Step], code: str, rated: str = ""
) -> Response:
    return render(
        request,
        "resident_query.html",
        order={
            "number": order.number,
            "type": order.order_type,
            "status": resident.status_key(order),
            "satisfaction": order.satisfaction,
            "can_rate": resident.can_rate(order),
        },
        steps=steps,
        code=code,
        rated=rated,
        number=order.number,
        error="",
        minutes=0,
    )


async def _fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v)[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}


def _lookup(settings: Settings, number: str, code: str) -> tuple[WorkOrder, list[resident.Step]] | None:
    with session_scope(settings) as s:
        order = resident.find_order(s, number, code)
        if order is None:
            return None
        steps = resident.timeline(s, order)
        s.expunge(order)
        return order, steps


async def _checked_lookup(
    request: Request, fields: dict[str, str]
) -> Response | tuple[WorkOrder, list[resident.Step]]:
    """The order the form names, or the page to answer with (throttled, or not found)."""
    settings: Settings = request.app.state.settings
    number, code = fields.get("number", ""), fields.get("code", "")
    throttle = request.app.state.login_throttle
    name, addr = _throttle_keys(request, number)
    decision = await run_in_threadpool(throttle.check, name, addr)
    if not decision.allowed:
        log.warning("resident page throttled for %s from %s", name, addr)
        return _form_page(request, 429, "throttled", decision.retry_after_minutes, number)
    found = await run_in_threadpool(_lookup, settings, number, code)
    if found is None:
        await run_in_threadpool(throttle.record_failure, name, addr)
        return _form_page(request, 404, "not_found", number=resident.normalize_number(number)[:32])
    return found


@public.get("/q")
def query_form(request: Request) -> Response:
    return _form_page(request)


@public.post("/q")
async def query(request: Request) -> Response:
    fields = await _fields(request)
    found = await _checked_lookup(request, fields)
    if isinstance(found, Response):
        return found
    order, steps = found
    return _order_page(request, order, steps, fields.get("code", "").strip())


@public.post("/q/rate")
async def rate(request: Request) -> Response:
    fields = await _fields(request)
    found = await _checked_lookup(request, fields)
    if isinstance(found, Response):
        return found
    order, _steps = found
    code = fields.get("code", "").strip()
    rating = {str(i): i for i in range(1, 6)}.get(fields.get("rating", "").strip())
    if rating is None:
        return _order_page(request, order, _steps, code, rated="missing")
    settings: Settings = request.app.state.settings

    def work() -> tuple[WorkOrder, list[resident.Step], str]:
        with session_scope(settings) as s:
            row = resident.find_order(s, order.number, code)
            assert row is not None
            outcome = "thanks"
            try:
                resident.rate(s, settings, row, rating, fields.get("comment", ""))
                s.commit()
            except DispatchError:
                s.rollback()
                outcome = "already"  # rated meanwhile (by SMS, the call, or a seat)
            row = resident.find_order(s, order.number, code)
            assert row is not None
            steps = resident.timeline(s, row)
            s.expunge(row)
            return row, steps, outcome

    row, steps, outcome = await run_in_threadpool(work)
    return _order_page(request, row, steps, code, rated=outcome)
