"""Open311 GeoReport v2 over the work orders, in both of its formats (``.json`` and ``.xml``), for
city platforms and apps that speak it.

GET services, service definitions and tokens are public as the spec has them; POST requests
needs an ``api_key`` from ``open311_api_keys``. GET requests shows an anonymous client only the
requests filed through Open311: orders taken on the hotline (their categories, communities and
sequential numbers) need an ``api_key`` from ``open311_read_keys``. Errors are the spec's list of
``{"code", "description"}``. What a request shows is what the spec defines: no caller name or
phone leaves through it. Access rules: ``access.PUBLIC_ROUTES`` (these routes authenticate by
api_key themselves).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from callcenter import phone
from callcenter.audit.service import record as audit
from callcenter.clock import iso_seconds
from callcenter.config import Settings
from callcenter.database import session_scope
from callcenter.directory.models import Community, Outlet
from callcenter.records.models import Open311Token
from dispatch import service as dispatch
from dispatch.models import ORDER_TYPES, Category, Status, WorkOrder

router = APIRouter(prefix="/open311/v2")

CLOSED = Status.FINAL | {Status.RESOLVED, Status.FOLLOWED_UP}
MAX_RESULTS = 1000
DEFAULT_SPAN = timedelta(days=90)
OPEN311_ACTOR = "open311:"  # the created_by of an order filed through Open311, before the client


FORMATS = ("json", "xml")
# The spec's XML: a root element per response and an element per list item.
_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # XML 1.0 chars


def _xml_into(parent: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_into(ET.SubElement(parent, key), item)
    elif isinstance(value, list):
        for item in value:
            _xml_into(ET.SubElement(parent, _ITEMS.get(parent.tag, "item")), item)
    elif value is not None:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parent.text = _NOT_XML.sub("", text)  # ElementTree escapes; it does not drop these


def to_xml(root: str, body: Any) -> bytes:
    element = ET.Element(root)
    _xml_into(element, body)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def respond(fmt: str, root: str, body: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, body), status_code=status, media_type="text/xml; charset=utf-8")
    return JSONResponse(body, status_code=status)


def error(status: int, description: str, fmt: str = "json") -> Response:
    return respond(fmt, "errors", [{"code": status, "description": description}], status)


def _format(fmt: str) -> str | None:
    return fmt if fmt in FORMATS else None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _jurisdiction_ok(request: Request, params: Any) -> bool:
    wanted = params.get("jurisdiction_id")
    return not wanted or wanted == request.app.state.settings.open311_jurisdiction_id


def _api_client(settings: Settings, key: str) -> str | None:
    """A short fingerprint of the api_key if it is one of ours (for the order's history/audit)."""
    for known in settings.open311_api_keys:
        if key and hmac.compare_digest(known.encode(), key.encode()):
            return hashlib.sha256(key.encode()).hexdigest()[:12]
    return None


def _may_read_hotline(settings: Settings, key: str) -> bool:
    """Whether the api_key is a read key (hotline-taken orders are shown only then)."""
    return bool(key) and any(
        hmac.compare_digest(k.encode(), key.encode()) for k in settings.open311_read_keys
    )


def filed_through_open311(order: WorkOrder) -> bool:
    return order.created_by.startswith(OPEN311_ACTOR)


def publicly_listed(order: WorkOrder) -> bool:
    """What an anonymous GeoReport client may read: requests filed through Open311, and hotline
    orders a supervisor marked public (shown with their category and community only)."""
    return filed_through_open311(order) or order.public


def _service(cat: Category, groups: dict[int, str]) -> dict[str, Any]:
    return {
        "service_code": cat.code,
        "service_name": cat.name,
        "description": cat.name,
        "metadata": True,
        "type": "realtime",
        "keywords": "",
        "group": groups.get(cat.parent_id or 0, ""),
    }


def _services(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(settings) as db:
        cats = list(db.exec(select(Category).where(Category.active).order_by(Category.code)))
    names = {c.id: c.name for c in cats if c.id is not None}
    parents = {c.parent_id for c in cats if c.parent_id}
    return [_service(c, names) for c in cats if c.id not in parents]  # leaves only


@router.get("/discovery.{fmt}")
async def discovery(request: Request, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    return respond(
        fmt,
        "discovery",
        {
            "changeset": "2026-11-28T00:00:00Z",
            "contact": "安宁区社区服务热线 96345",
            "key_service": "api_key: ask the hotline's administrator",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": request.app.state.settings.public_url("/open311/v2"),
                    "changeset": "2026-11-28T00:00:00Z",
                    "type": "production",
                    "formats": ["application/json", "text/xml"],
                }
            ],
        },
    )


@router.get("/services.{fmt}")
async def services(request: Request, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    if not _jurisdiction_ok(request, request.query_params):
        return error(404, "jurisdiction_id not found", fmt)
    return respond(fmt, "services", await run_in_threadpool(_services, request.app.state.settings))


def _attributes() -> list[dict[str, Any]]:
    return [
        {
            "variable": True,
            "code": "order_type",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "诉求类型 / the kind of request",
            "order": 1,
            "description": "诉求类型",
            "values": [{"key": t, "name": t} for t in ORDER_TYPES],
        }
    ]


@router.get("/services/{service_code}.{fmt}")
async def service_definition(request: Request, service_code: str, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    if not _jurisdiction_ok(request, request.query_params):
        return error(404, "jurisdiction_id not found", fmt)
    codes = {s["service_code"] for s in await run_in_threadpool(_services, request.app.state.settings)}
    if service_code not in codes:
        return error(404, "service_code not found", fmt)
    return respond(fmt, "service_definition", {"service_code": service_code, "attributes": _attributes()})


def _request_view(order: WorkOrder, code_of: dict[int, str], agency: str, community: str) -> dict[str, Any]:
    # Orders taken on the hotline hold what residents told a seat (names, flat numbers, health):
    # the public API shows their category and community only. Orders filed through Open311 show
    # what their filer wrote.
    public = filed_through_open311(order)
    closed = order.status in CLOSED
    return {
        "service_request_id": order.number,
        "status": "closed" if closed else "open",
        "status_notes": (order.resolution if public else "已办结") if closed else order.status,
        "service_name": order.category,
        "service_code": code_of.get(order.category_id or 0, ""),
        "description": order.summary if public else (order.category or order.order_type),
        "agency_responsible": agency,
        "service_notice": "",
        "requested_datetime": iso_seconds(order.created_at),
        "updated_datetime": iso_seconds(order.updated_at),
        "expected_datetime": iso_seconds(order.deadline_at),
        "address": order.address if public else community,
        "address_id": "",
        "zipcode": "",
        "lat": None,
        "long": None,
        "media_url": "",
    }


def _views(settings: Settings, orders: list[WorkOrder]) -> list[dict[str, Any]]:
    with session_scope(settings) as db:
        code_of = {c.id: c.code for c in db.exec(select(Category)) if c.id is not None}
        outlets = {o.id: o.name for o in db.exec(select(Outlet)) if o.id is not None}
        communities = {c.id: c.name for c in db.exec(select(Community)) if c.id is not None}
    return [
        _request_view(o, code_of, outlets.get(o.outlet_id or 0, ""), communities.get(o.community_id or 0, ""))
        for o in orders
    ]


def _create(settings: Settings, form: dict[str, str], client: str, ip: str) -> tuple[int, Any]:
    code = form.get("service_code", "")
    address = " ".join(form.get("address_string", "").split())[:255]
    lat, lon = form.get("lat", ""), form.get("long", "")
    if not address and not (lat and lon) and not form.get("address_id"):
        return 400, "a location is required: lat and long, address_string or address_id"
    if lat and lon:
        try:
            la, lo = float(lat), float(lon)
        except ValueError:
            return 400, "lat and long must be numbers"
        if not (-90 <= la <= 90 and -180 <= lo <= 180):
            return 400, "lat and long out of range"
        address = address or f"{la:.6f},{lo:.6f}"
    description = form.get("description", "").strip()
    order_type = form.get("attribute[order_type]", "") or "求助"
    if order_type not in ORDER_TYPES:
        return 400, "attribute[order_type] is not one of the listed values"
    raw_phone = form.get("phone", "")
    # A phone that is not a usable number is dropped (the spec's own example sends "111111111").
    region, area = settings.default_region, settings.default_area_code
    caller = (phone.normalize(raw_phone, region, area) if raw_phone else None) or ""
    name = " ".join(x for x in (form.get("last_name", ""), form.get("first_name", "")) if x).strip()
    with session_scope(settings) as db:
        cat = db.exec(select(Category).where(Category.code == code, Category.active)).first()
        if cat is None:
            return 404, "service_code not found"
        actor = dispatch.Actor(username=f"{OPEN311_ACTOR}{client}", role="seat")
        try:
            order = dispatch.create_order(
                db,
                actor,
                order_type=order_type,
                summary=description or cat.name,
                category_id=cat.id,
                caller_phone=caller,
                caller_name=name,
                address=address,
            )
        except dispatch.DispatchError as exc:
            return 400, str(exc)
        token = secrets.token_urlsafe(18)
        assert order.id is not None  # created and flushed above
        db.add(Open311Token(token=token, order_id=order.id, client=client))
        audit(db, f"open311:{client}", "open311.request", target=f"order:{order.number}", ip=ip)
        db.commit()
        return 201, [
            {"service_request_id": order.number, "token": token, "service_notice": "", "account_id": None}
        ]


@router.post("/requests.{fmt}")
async def post_request(request: Request, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    settings: Settings = request.app.state.settings
    form = {k: str(v)[:2000] for k, v in (await request.form()).multi_items()}
    if not _jurisdiction_ok(request, form):
        return error(404, "jurisdiction_id not found", fmt)
    client = _api_client(settings, form.get("api_key", ""))
    if client is None:
        return error(403, "api_key is missing or not valid", fmt)
    if not form.get("service_code"):
        return error(400, "service_code is required", fmt)
    ip = request.client.host if request.client else ""
    status, body = await run_in_threadpool(_create, settings, form, client, ip)
    if status != 201:
        return error(status, body, fmt)
    return respond(fmt, "service_requests", body, 201)


def _search(settings: Settings, params: Any, hotline: bool) -> tuple[int, Any]:
    ids = [i.strip()[:64] for i in params.get("service_request_id", "").split(",") if i.strip()][:MAX_RESULTS]
    q = select(WorkOrder)
    if not hotline:
        q = q.where(
            col(WorkOrder.created_by).startswith(OPEN311_ACTOR, autoescape=True)
            | (col(WorkOrder.public).is_(True))
        )
    if ids:
        q = q.where(col(WorkOrder.number).in_(ids))
    else:
        end = _parse_time(params.get("end_date")) or datetime.now(UTC)
        start = _parse_time(params.get("start_date")) or end - DEFAULT_SPAN
        if (params.get("start_date") and _parse_time(params["start_date"]) is None) or (
            params.get("end_date") and _parse_time(params["end_date"]) is None
        ):
            return 400, "start_date and end_date are w3c date-times"
        q = q.where(col(WorkOrder.created_at) >= start, col(WorkOrder.created_at) <= end)
        status = params.get("status", "")
        if status:
            wanted = {s.strip() for s in status.split(",")}
            if not wanted <= {"open", "closed"}:
                return 400, "status is open or closed"
            if wanted == {"open"}:
                q = q.where(col(WorkOrder.status).notin_(CLOSED))
            elif wanted == {"closed"}:
                q = q.where(col(WorkOrder.status).in_(CLOSED))
        codes = [c.strip() for c in params.get("service_code", "").split(",") if c.strip()]
        if codes:
            with session_scope(settings) as db:
                cat_ids = [c.id for c in db.exec(select(Category).where(col(Category.code).in_(codes)))]
            q = q.where(col(WorkOrder.category_id).in_(cat_ids))
    q = (
        q.where(WorkOrder.status != Status.MERGED)
        .order_by(col(WorkOrder.created_at).desc())
        .limit(MAX_RESULTS)
    )
    with session_scope(settings) as db:
        orders = list(db.exec(q))
    return 200, _views(settings, orders)


@router.get("/requests.{fmt}")
async def get_requests(request: Request, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    if not _jurisdiction_ok(request, request.query_params):
        return error(404, "jurisdiction_id not found", fmt)
    settings: Settings = request.app.state.settings
    hotline = _may_read_hotline(settings, request.query_params.get("api_key", ""))
    status, body = await run_in_threadpool(_search, settings, request.query_params, hotline)
    return error(status, body, fmt) if status != 200 else respond(fmt, "service_requests", body)


@router.get("/requests/{request_id}.{fmt}")
async def get_request(request: Request, request_id: str, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    if not _jurisdiction_ok(request, request.query_params):
        return error(404, "jurisdiction_id not found", fmt)
    settings: Settings = request.app.state.settings
    hotline = _may_read_hotline(settings, request.query_params.get("api_key", ""))

    def one() -> list[dict[str, Any]]:
        with session_scope(settings) as db:
            order = dispatch.find_by_number(db, request_id[:64])
        if order is None or not (hotline or publicly_listed(order)):
            return []  # a hotline order is "not found" to a client without the read key
        return _views(settings, [order])

    found = await run_in_threadpool(one)
    if not found:
        return error(404, "service_request_id not found", fmt)
    return respond(fmt, "service_requests", found)


@router.get("/tokens/{token}.{fmt}")
async def get_token(request: Request, token: str, fmt: str):
    if not _format(fmt):
        return error(404, "format is json or xml")
    settings: Settings = request.app.state.settings

    def lookup() -> str | None:
        with session_scope(settings) as db:
            row = db.exec(select(Open311Token).where(Open311Token.token == token[:64])).first()
            order = db.get(WorkOrder, row.order_id) if row else None
            return order.number if order else None

    number = await run_in_threadpool(lookup)
    if number is None:
        return error(404, "token not found", fmt)
    return respond(fmt, "service_requests", [{"service_request_id": number, "token": token}])
