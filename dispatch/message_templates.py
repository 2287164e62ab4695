"""Message templates: every text the product sends by SMS or e-mail is a registered template with
named variables, and administrators may change its text (an e-mail's subject too) and map an SMS
to a domestic provider's registered template (Aliyun sends only pre-registered templates; their
parameters carry our variables).

To add a message: ``register(Spec(name, label_key, variables, default_text))`` next to the code
that sends it, and send it with ``render(session, name, values)``. The page lists the registry;
a saved text is checked (only the spec's variables, no formatting tricks) and audited, and moves
the ``templates`` stamp so the next message on any process uses it. Links are never variables
(China's SMS gateways refuse links that are not part of the registered template); an e-mail's
link to the outlet page is added by the code that sends it, after the text (``render_mail``).
"""

from __future__ import annotations

import html
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from callcenter.audit.service import record as audit
from callcenter.clock import utcnow
from dispatch import stamps, texts
from dispatch.categories import Editor
from dispatch.errors import ConfigError
from dispatch.models import MessageTemplate, WorkOrder

STAMP = "templates"
MAX_BODY = 1000  # an SMS text
MAX_MAIL_BODY = 4000
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Spec:
    name: str
    label: str  # catalogue key of its name on the page
    variables: tuple[str, ...]
    default: str
    channel: str = "sms"  # sms | mail
    subject: str = ""  # an e-mail's default subject
    # An SMS the provider may send as its registered template (False: answers to replies, sent
    # as plain text within the conversation the outlet started).
    provider_template: bool = True

    @property
    def limit(self) -> int:
        return MAX_MAIL_BODY if self.channel == "mail" else MAX_BODY


REGISTRY: dict[str, Spec] = {}
# How to fill a template's variables from an order, for the page's preview with a real order
# (the code that sends the message registers it: ``register_values``).
SAMPLES: dict[str, Callable[[Session, WorkOrder], dict[str, str]]] = {}


def register_values(name: str, values: Callable[[Session, WorkOrder], dict[str, str]]) -> None:
    SAMPLES[name] = values


def register(spec: Spec) -> Spec:
    if spec.name in REGISTRY and REGISTRY[spec.name] != spec:
        raise ValueError(f"template {spec.name} registered twice")
    check_body(spec.default, spec)
    if spec.channel == "mail":
        check_subject(spec.subject, spec)
    REGISTRY[spec.name] = spec
    return spec


def fields_of(body: str) -> list[str]:
    """The variables a text names; a ``ConfigError`` for a broken brace or a formatting trick."""
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError:
        raise ConfigError("unbalanced braces", "template_braces") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ConfigError(f"only plain {{name}} variables: {name!r}", "template_variable", name=name[:32])
        names.append(name)
    return names


def check_body(body: str, spec: Spec) -> str:
    body = "".join(ch for ch in body.replace("\r\n", "\n") if ch.isprintable() or ch == "\n").strip()
    if not body or len(body) > spec.limit:
        raise ConfigError(f"a text has 1 to {spec.limit} characters", "template_length", limit=spec.limit)
    for name in fields_of(body):
        if name not in spec.variables:
            raise ConfigError(f"unknown variable {name}", "template_variable", name=name[:32])
    return body


def check_subject(subject: str, spec: Spec) -> str:
    """An e-mail's subject: one line (a line break would start another header)."""
    subject = " ".join("".join(ch if ch.isprintable() else " " for ch in subject).split())
    if not subject or len(subject) > MAX_SUBJECT:
        raise ConfigError(
            f"a subject has 1 to {MAX_SUBJECT} characters", "template_subject", limit=MAX_SUBJECT
        )
    for name in fields_of(subject):
        if name not in spec.variables:
            raise ConfigError(f"unknown variable {name}", "template_variable", name=name[:32])
    return subject


@dataclass(frozen=True)
class Rendered:
    body: str
    provider_code: str = ""
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Texts:
    rows: dict[str, MessageTemplate] = field(default_factory=dict)
    version: int = -1


_cache: dict[str, Texts] = {}
_lock = threading.Lock()


def current(session: Session) -> Texts:
    key = str(session.get_bind().engine.url)
    version = stamps.current(session, STAMP)
    cached = _cache.get(key)
    if cached is None or cached.version != version:
        rows = {r.name: r for r in session.exec(select(MessageTemplate))}
        for r in rows.values():
            session.expunge(r)
        cached = Texts(rows, version)
        with _lock:
            _cache[key] = cached
    return cached


def forget() -> None:
    with _lock:
        _cache.clear()


def effective(session: Session, name: str) -> tuple[str, str, dict[str, str]]:
    """(body, provider code, parameter map) in force for ``name``."""
    spec = REGISTRY[name]
    row = current(session).rows.get(name)
    if row is None:
        return spec.default, "", {}
    return row.body, row.provider_code, dict(row.param_map or {})


def effective_subject(session: Session, name: str) -> str:
    row = current(session).rows.get(name)
    return row.subject if row is not None and row.subject else REGISTRY[name].subject


def fill(body: str, values: dict[str, Any]) -> str:
    return body.format_map({k: "" if v is None else str(v) for k, v in values.items()})


def render(session: Session, name: str, values: dict[str, Any], body: str | None = None) -> Rendered:
    """The text for ``values`` (every variable of the spec is given; missing ones are empty);
    ``body``: a text under edit (the preview)."""
    spec = REGISTRY[name]
    current_body, code, mapping = effective(session, name)
    full = {v: values.get(v, "") for v in spec.variables}
    text = fill(current_body if body is None else check_body(body, spec), full)
    params = {param: str(full.get(var, "")) for param, var in mapping.items()}
    return Rendered(text, code, params)


@dataclass(frozen=True)
class MailText:
    subject: str
    text: str
    html: str


def render_mail(
    session: Session,
    name: str,
    values: dict[str, Any],
    *,
    link: str = "",
    link_label: str = "",
    body: str | None = None,
    subject: str | None = None,
) -> MailText:
    """An e-mail from its template: the plain text, and the same text as HTML (everything escaped:
    residents' words end up in the values). ``link``: added after the text by the sender, never a
    variable; ``body``/``subject``: a text under edit (the preview)."""
    spec = REGISTRY[name]
    full = {v: values.get(v, "") for v in spec.variables}
    current_body, _code, _mapping = effective(session, name)
    text = fill(current_body if body is None else check_body(body, spec), full)
    title = fill(effective_subject(session, name) if subject is None else check_subject(subject, spec), full)
    paragraphs = [html.escape(p).replace("\n", "<br>") for p in text.split("\n\n")]
    if link:
        text += f"\n\n{link_label}{link}"
        paragraphs.append(
            f'<a href="{html.escape(link)}">{html.escape(link_label.rstrip("：: ") or link)}</a>'
        )
    page = '<!doctype html>\n<html lang="zh-CN"><body>\n' + "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return MailText(" ".join(title.split())[:MAX_SUBJECT], text, page + "\n</body></html>\n")


def _param_map(spec: Spec, raw: Any) -> dict[str, str]:
    """``param=variable`` lines (or a dict): the provider's parameter names to our variables."""
    items: list[tuple[str, str]]
    if isinstance(raw, dict):
        items = [(str(k), str(v)) for k, v in raw.items()]
    else:
        items = []
        for line in str(raw or "").replace("；", "\n").replace(";", "\n").splitlines():
            if line.strip():
                param, _, var = line.partition("=")
                items.append((param.strip(), var.strip()))
    out: dict[str, str] = {}
    for param, var in items[:20]:
        if not param.isidentifier() or len(param) > 32:
            raise ConfigError(f"not a parameter name: {param[:32]!r}", "template_param", name=param[:32])
        if var not in spec.variables:
            raise ConfigError(f"unknown variable {var[:32]}", "template_variable", name=var[:32])
        out[param] = var
    return out


def save(session: Session, editor: Editor, name: str, data: dict[str, Any]) -> MessageTemplate:
    spec = REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"no template {name[:48]!r}", "not_found")
    body = check_body(str(data.get("body") or ""), spec)
    subject = check_subject(str(data.get("subject") or ""), spec) if spec.channel == "mail" else ""
    registered = spec.channel == "sms" and spec.provider_template
    code = str(data.get("provider_code") or "").strip() if registered else ""
    if code and not (len(code) <= 32 and code.replace("_", "").isalnum() and code.isascii()):
        raise ConfigError(f"not a template code: {code[:32]!r}", "template_code")
    mapping = _param_map(spec, data.get("param_map")) if registered else {}
    if code and not mapping:
        raise ConfigError("a registered template needs its parameters mapped", "template_param", name="")
    row = session.get(MessageTemplate, name)
    old = (
        {
            "body": row.body,
            "subject": row.subject,
            "provider_code": row.provider_code,
            "param_map": row.param_map,
        }
        if row
        else None
    )
    if row is None:
        row = MessageTemplate(name=name, body=body)
    row.body, row.subject, row.provider_code, row.param_map = body, subject, code, mapping
    row.updated_at, row.updated_by = utcnow(), editor.username
    session.add(row)
    session.flush()
    audit(
        session,
        editor.username,
        "template.save",
        target=f"template:{name}",
        role=editor.role,
        ip=editor.ip,
        old=old or {"body": spec.default, "subject": spec.subject, "provider_code": "", "param_map": {}},
        new={"body": body, "subject": subject, "provider_code": code, "param_map": mapping},
    )
    stamps.bump(session, STAMP)
    return row


def reset(session: Session, editor: Editor, name: str) -> None:
    """Back to the registry's default text."""
    row = session.get(MessageTemplate, name)
    if row is None:
        return
    old = {
        "body": row.body,
        "subject": row.subject,
        "provider_code": row.provider_code,
        "param_map": row.param_map,
    }
    session.delete(row)
    audit(
        session,
        editor.username,
        "template.reset",
        target=f"template:{name}",
        role=editor.role,
        ip=editor.ip,
        old=old,
    )
    session.flush()
    stamps.bump(session, STAMP)


# --- the registry: every SMS the order domain sends ----------------------------------------------

OUTLET_ORDER = register(
    Spec(
        "outlet_order",
        "templates.outlet_order",
        (
            "signature",
            "head",
            "number",
            "kind",
            "category",
            "urgent",
            "summary",
            "address",
            "deadline",
            "code",
        ),
        texts.OUTLET_SMS,
    )
)
SUPERVISOR_OVERDUE = register(
    Spec(
        "supervisor_overdue",
        "templates.supervisor_overdue",
        ("signature", "number", "kind", "deadline", "status"),
        texts.SUPERVISOR_SMS,
    )
)

# The resident's SMS. ``page`` is the resident's page as registered with the SMS platform
# (``resident_page_url``, one fixed address from the configuration, never per-message data); a
# domestic provider's registered template carries it as literal text, not as a parameter.
RESIDENT_VARIABLES = ("signature", "number", "code", "page")
RESIDENT_RECEIPT = register(
    Spec("resident_receipt", "templates.resident_receipt", RESIDENT_VARIABLES, texts.RESIDENT_SMS_RECEIPT)
)
RESIDENT_DISPATCHED = register(
    Spec(
        "resident_dispatched",
        "templates.resident_dispatched",
        RESIDENT_VARIABLES,
        texts.RESIDENT_SMS_DISPATCHED,
    )
)
# 受理 and 派单 in one request (the console's order form with an outlet chosen): one SMS instead
# of the receipt and the dispatch notice.
RESIDENT_RECEIPT_DISPATCHED = register(
    Spec(
        "resident_receipt_dispatched",
        "templates.resident_receipt_dispatched",
        RESIDENT_VARIABLES,
        texts.RESIDENT_SMS_RECEIPT_DISPATCHED,
    )
)
RESIDENT_RESOLVED = register(
    Spec("resident_resolved", "templates.resident_resolved", RESIDENT_VARIABLES, texts.RESIDENT_SMS_RESOLVED)
)
RESIDENT_RATE_ASK = register(
    Spec("resident_rate_ask", "templates.resident_rate_ask", RESIDENT_VARIABLES, texts.RESIDENT_SMS_RATE_ASK)
)


# The answers to a resident's SMS (a rating 1-5, TD).
RESIDENT_REPLY_RATED = register(
    Spec(
        "resident_reply_rated",
        "templates.resident_reply_rated",
        ("number",),
        texts.RESIDENT_REPLY_RATED,
        provider_template=False,
    )
)
RESIDENT_REPLY_NO_ORDER = register(
    Spec(
        "resident_reply_no_order",
        "templates.resident_reply_no_order",
        (),
        texts.RESIDENT_REPLY_NO_ORDER,
        provider_template=False,
    )
)
RESIDENT_REPLY_OPTED_OUT = register(
    Spec(
        "resident_reply_opted_out",
        "templates.resident_reply_opted_out",
        (),
        texts.RESIDENT_REPLY_OPTED_OUT,
        provider_template=False,
    )
)


# The answers to an outlet's SMS replies (签收 / 进度 / 办结 / 退单).
REPLY_APPLIED = register(
    Spec(
        "reply_applied",
        "templates.reply_applied",
        ("verb", "number"),
        texts.REPLY_APPLIED,
        provider_template=False,
    )
)
REPLY_HELP = register(
    Spec("reply_help", "templates.reply_help", (), texts.REPLY_HELP, provider_template=False)
)
REPLY_UNKNOWN_CODE = register(
    Spec(
        "reply_unknown_code",
        "templates.reply_unknown_code",
        ("code", "help"),
        texts.REPLY_UNKNOWN_CODE,
        provider_template=False,
    )
)
# Why an outlet's reply was refused, by ``DispatchError.code`` (an invalid note answers with the
# validation's own message).
REPLY_REFUSED = {
    code: register(
        Spec(
            f"reply_refused_{code}",
            f"templates.reply_refused_{code}",
            variables,
            text,
            provider_template=False,
        )
    )
    for code, variables, text in (
        ("state", ("number", "status", "command"), texts.REPLY_REFUSED["state"]),
        ("outlet", ("number",), texts.REPLY_REFUSED["outlet"]),
        ("role", ("command",), texts.REPLY_REFUSED["role"]),
    )
}
REPLY_UNKNOWN_SENDER = register(
    Spec(
        "reply_unknown_sender",
        "templates.reply_unknown_sender",
        (),
        texts.REPLY_UNKNOWN_SENDER,
        provider_template=False,
    )
)


# --- the registry: every e-mail the order domain sends -------------------------------------------

ORDER_MAIL_VARIABLES = (
    "outlet",
    "action",
    "number",
    "code",
    "kind",
    "category",
    "urgent",
    "status",
    "summary",
    "community",
    "address",
    "deadline",
)
ORDER_MAIL = register(
    Spec(
        "order_mail",
        "templates.order_mail",
        ORDER_MAIL_VARIABLES,
        texts.ORDER_MAIL,
        channel="mail",
        subject=texts.ORDER_MAIL_SUBJECT,
    )
)
SUPERVISOR_MAIL = register(
    Spec(
        "supervisor_mail",
        "templates.supervisor_mail",
        ORDER_MAIL_VARIABLES,
        texts.SUPERVISOR_MAIL,
        channel="mail",
        subject=texts.SUPERVISOR_MAIL_SUBJECT,
    )
)
REOPEN_REVIEW_MAIL = register(
    Spec(
        "reopen_review_mail",
        "templates.reopen_review_mail",
        (*ORDER_MAIL_VARIABLES, "rating", "comment"),
        texts.REOPEN_REVIEW_MAIL,
        channel="mail",
        subject=texts.REOPEN_REVIEW_MAIL_SUBJECT,
    )
)
DAILY_MAIL = register(
    Spec(
        "daily_summary_mail",
        "templates.daily_summary_mail",
        ("scope", "day", "created", "open", "overdue", "by_status", "overdue_list"),
        texts.DAILY_MAIL,
        channel="mail",
        subject=texts.DAILY_MAIL_SUBJECT,
    )
)
