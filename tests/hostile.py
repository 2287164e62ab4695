"""The hostile-input corpus (tests/data/hostile/) fed to the edges: the FastAGI routes, the SMS
webhooks, Open311 and the JSON API. Shared by tests/agi_scripts/test_hostile_agi.py,
tests/web_console/test_hostile_web.py and benchmarks/bench_security.py.

Clean handling: every web answer is below 500, and every AGI route finishes without an error and
sets only printable values (no control, bidi or line-ending characters reach the dialplan)."""

from __future__ import annotations

import itertools
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from agi_scripts.testing import run_agi_call

CORPUS = Path(__file__).resolve().parent / "data" / "hostile"
# The files this module feeds (others in the folder belong to other tests).
FILES = ("caller_names", "sip_headers", "sms_bodies", "open311_bodies", "numbers")


def load(name: str) -> list:
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))["items"]


@dataclass
class Outcome:
    inputs: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        self.inputs += 1
        if not ok:
            self.failures.append(what[:300])

    def add(self, other: Outcome) -> Outcome:
        return Outcome(self.inputs + other.inputs, self.failures + other.failures)


def clean_value(value: str) -> bool:
    """What the dialplan may receive: no control, format (bidi, zero-width) or separator chars."""
    return all(unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for ch in value)


# --- FastAGI ------------------------------------------------------------------------------

_linkedids = itertools.count(1)


async def feed_agi(port: int) -> Outcome:
    """Every caller name, number and SIP header value through the FastAGI routes."""
    out = Outcome()

    async def call(script: str, args: list[str], env: dict[str, str] | None = None, variables=None) -> None:
        what = f"{script} {args!r} {env!r} {variables!r}"
        try:
            set_vars, _sent = await run_agi_call("127.0.0.1", port, script, args, env, variables, timeout=10)
        except Exception as exc:  # the route hung or broke the connection
            out.check(False, f"{what}: {exc!r}")
            return
        bad = {k: v for k, v in set_vars.items() if not clean_value(v)}
        out.check(not bad, f"{what}: set {bad!r}")

    def linkedid() -> str:
        return f"1700000100.{next(_linkedids)}"

    for name in load("caller_names"):
        await call("incoming", ["carrier", "96345", "hotline", linkedid()], {"agi_calleridname": name})
    for number in load("numbers"):
        await call("incoming", ["carrier", number, "hotline", linkedid()], {"agi_callerid": number})
        await call("after_hours", ["callback", "96345", linkedid(), linkedid()], {"agi_callerid": number})
        await call("callback", [number, linkedid()], {"agi_callerid": number})
        await call("followup", [number, number], {"agi_callerid": number})
    for value in load("sip_headers"):
        # Asterisk answers GET VARIABLE on one line: a header value reaches the route unfolded.
        answer = value.replace("\r", " ").replace("\n", " ")
        await call(
            "incoming",
            ["12345", "12345", "hotline", linkedid()],
            variables={
                "PJSIP_HEADER(read,X-12345-OrderNo)": answer,
                "PJSIP_HEADER(read,X-12345-Summary)": answer,
            },
        )
        await call("incoming", [value, value, value, value])
        await call("after_hours", ["voicemail", value, value, value])
    return out


# --- the web edges ------------------------------------------------------------------------


@dataclass
class WebTarget:
    """The running app and what the feeders need to reach past its first checks."""

    base_url: str
    twilio_token: str
    twilio_sid: str
    aliyun_token: str
    open311_key: str
    seat_cookie: str
    seat_csrf: str


_sids = itertools.count(1)


def _ok(r: httpx.Response) -> bool:
    return r.status_code < 500


def feed_web(target: WebTarget) -> Outcome:
    """The corpus through the SMS webhooks, Open311 and the JSON API: never a 5xx."""
    from twilio.request_validator import RequestValidator

    out = Outcome()
    names, numbers, bodies = load("caller_names"), load("numbers"), load("sms_bodies")
    client = httpx.Client(base_url=target.base_url, trust_env=False, timeout=60, follow_redirects=False)
    seat = {"Cookie": target.seat_cookie, "X-CSRF-Token": target.seat_csrf}

    def send(what: str, method: str, url: str, **kw) -> None:
        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            out.check(False, f"{what}: {exc!r}")
            return
        out.check(_ok(r), f"{what} -> {r.status_code}: {r.text[:200]}")

    # Twilio: signed as Twilio signs, so the body reaches the reply grammar.
    validator = RequestValidator(target.twilio_token)
    url = target.base_url + "/sms/twilio/inbound"
    for sender, body in [("+8613912345678", b) for b in bodies + names] + [(n, "签收 1234") for n in numbers]:
        params = {
            "MessageSid": f"SM{next(_sids):032d}",
            "AccountSid": target.twilio_sid,
            "From": sender,
            "Body": body,
        }
        headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
        send(f"twilio {sender!r} {body[:80]!r}", "POST", "/sms/twilio/inbound", data=params, headers=headers)

    # Aliyun: the same bodies and numbers, and JSON of odd shapes.
    aliyun = f"/sms/aliyun/inbound?token={target.aliyun_token}"
    items: list = [
        {"sequence_id": next(_sids), "phone_number": "13912345678", "content": b} for b in bodies + names
    ]
    items += [{"sequence_id": next(_sids), "phone_number": n, "content": "签收 1234"} for n in numbers]
    for item in items:
        send(f"aliyun {str(item)[:120]}", "POST", aliyun, json=[item])
    for odd in ([1, 2], None, "x", {"sequence_id": [1]}, [{"sequence_id": 10**5000 // 10**4990}], [[[]]]):
        send(f"aliyun shape {str(odd)[:60]}", "POST", aliyun, json=odd)
    send(
        "aliyun not json", "POST", aliyun, content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )

    # Open311: each body in both formats, and odd search parameters.
    for body in load("open311_bodies"):
        for fmt in ("json", "xml"):
            send(
                f"open311 POST {str(body)[:120]}",
                "POST",
                f"/open311/v2/requests.{fmt}",
                data={**body, "api_key": target.open311_key},
            )
    for value in numbers + ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-13-45T99:99:99Z"]:
        params = {"start_date": value, "end_date": value, "status": value, "service_request_id": value}
        send(f"open311 GET {value[:60]!r}", "GET", "/open311/v2/requests.json", params=params)
        send(
            f"open311 GET one {value[:60]!r}",
            "GET",
            f"/open311/v2/requests/{quote(value[:200], safe='')}.json",
        )

    # The JSON API as a seat: names, numbers and texts where people type them.
    for name, number in itertools.zip_longest(names, numbers, fillvalue="x"):
        order = {
            "order_type": "求助",
            "summary": name[:1000] or "x",
            "caller_name": name[:64],
            "caller_phone": number[:40],
            "address": name[:255],
        }
        send(
            f"POST /api/orders {name[:40]!r} {number[:40]!r}", "POST", "/api/orders", json=order, headers=seat
        )
        send(
            f"GET /api/residents {name[:40]!r}",
            "GET",
            "/api/residents",
            params={"q": name[:64]},
            headers=seat,
        )
        send(
            f"POST /api/call/dial {number[:40]!r}",
            "POST",
            "/api/call/dial",
            json={"number": number[:32]},
            headers=seat,
        )
        send(
            f"GET /api/orders/suggest {name[:40]!r}",
            "GET",
            "/api/orders/suggest",
            params={"address": name[:255]},
            headers=seat,
        )
        send(
            f"GET /api/orders {number[:40]!r}",
            "GET",
            "/api/orders",
            params={"linkedid": number[:64]},
            headers=seat,
        )
        token = bytes(b for b in name.encode("utf-8") if b >= 0x20 and b != 0x7F)[:200]  # raw UTF-8
        send(
            f"GET /api/stats/today bearer {name[:40]!r}",
            "GET",
            "/api/stats/today",
            headers={"Authorization": (b"Bearer " + token).strip()},
        )
        send(
            f"POST /login {name[:40]!r}",
            "POST",
            "/login",
            data={"username": name, "password": number, "csrf": name},
        )
    client.close()
    return out
