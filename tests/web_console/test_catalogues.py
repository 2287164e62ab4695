"""Every catalogue key the templates, the Python code and the page scripts use exists in both languages.

Literal keys are read from the sources. A key built from a value (``"status." ~ o.status`` in a
template, ``f"stats.by.{by}"`` in Python, ``"seatstate." + state`` in a script) is checked for each
value its vocabulary can take, taken from the domain where it is defined; a new dynamic prefix
fails the test until its vocabulary is listed here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

import pytest

from callcenter.accounts.flows import SKILL_LEVELS
from callcenter.accounts.models import Phone, Role
from callcenter.callcontrol.service import SPY_MODES, CallControl
from callcenter.calls.state import SeatState
from callcenter.config import Settings
from callcenter.dialout import policy as dialout_policy
from callcenter.directory import imports
from callcenter.i18n import CATALOGUES
from callcenter.ivr.service import SCHEDULES
from callcenter.knowledge.models import ArticleStatus
from callcenter.knowledge.service import FEEDBACK_KINDS
from callcenter.statistics import diagnostics, exports
from callcenter.statistics import orders as order_stats
from callcenter.statistics import service as stats_service
from dispatch import config_file, resident
from dispatch.models import ORDER_TYPES, URGENCIES, Status
from dispatch.transitions import ACTIONS
from web_console import messages
from web_console.basic_data import EDIT_FIELDS, EDITABLE, IMPORTABLE
from web_console.knowledge import STEPS as KB_STEPS
from web_console.reports import ORDER_KEYS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "web_console" / "templates"
SCRIPTS = ROOT / "web_console" / "static"
PACKAGES = ("hotline", "callcenter", "dispatch", "sms", "web_console", "agi_scripts", "asterisk_conf")

KEY = re.compile(r"[a-z_]+(?:\.[\w]+)+")


def values(vocabulary: object) -> list[str]:
    """The values of an enum, or of a class of string constants (``Status`` is either)."""
    if isinstance(vocabulary, type) and issubclass(vocabulary, Enum):
        return [str(m.value) for m in vocabulary]
    return [v for k, v in vars(vocabulary).items() if k.isupper() and isinstance(v, str)]


def _seat_states() -> set[str]:
    states = {SeatState(ext="1001", status=n).state for n in range(10)}
    states.add(SeatState(ext="1001", paused=True).state)
    states.add(SeatState(ext="1001", status=1, wrapup_until=float("inf")).state)
    return states


def _set_conn_states() -> set[str]:
    """Every state console.js passes to setConn, also one chosen by a condition (forbidden / no_extension)."""
    calls = re.findall(r"setConn\((.*?)\);", (SCRIPTS / "console.js").read_text(encoding="utf-8"))
    return {state for args in calls for state in re.findall(r'"(\w+)"', args)}


# Template and Python prefixes -> every value the rest of the key can take.
DYNAMIC: dict[str, Iterable[str]] = {
    # callcenter.callcontrol.callbacks.missed_callback_report: the reports' missed-call figures
    "stats.missed.": (
        "missed",
        "called_back",
        "called_back_15min",
        "ratio_15min",
        "delay_p50_s",
        "delay_p95_s",
        "closed",
        "closed_called_back",
    ),
    "status.": values(Status),
    "type.": ORDER_TYPES,
    # the order's actions, and "受理" (taking the order), which only the history records
    "action.": [*ACTIONS, "受理"],
    "orders.urgency.": URGENCIES,
    "console.role.": values(Role),
    "admin.skill.": SKILL_LEVELS.values(),
    "ivr.schedule.": SCHEDULES,
    "basic.kind.": IMPORTABLE,
    "basic.field.": {f for kind in EDITABLE for f in imports.COLUMNS[kind]}
    | {f for fields in EDIT_FIELDS.values() for f in fields},
    # sms.flows.Outcome.code as stored on the inbound reply; "replay" is refused and never stored
    "msg.outcome.": ("applied", "malformed", "unknown_sender", "unknown_code", "refused")
    + ("opted_out", "rated", "no_order"),  # a resident's 退订 and rating replies
    "msg.kind.": messages.OUTBOXES,
    "resident.step.": set(resident.RESIDENT_STEPS.values()),
    "resident.status.": resident.STATUS_KEYS,
    "resident.rating.": ("1", "2", "3", "4", "5"),
    "stats.by.": stats_service.GROUPS,
    "stats.def.": [k for k, _ in exports.QUEUE_COLUMNS + exports.SEAT_COLUMNS] + list(ORDER_KEYS),
    "stats.orders.": ORDER_KEYS,
    "stats.orders.by.": order_stats.GROUPS,
    "stats.part.": Settings.model_fields["stats_score_weights"].default,
    "stats.call.": (*exports.CALL_COLUMNS, *exports.RECORD_COLUMNS),
    "admin.phone.": values(Phone),
    "config.part.": config_file.PARTS,
    "diag.": diagnostics.TIMINGS,
    "kb.status.": values(ArticleStatus),
    "kb.feedback.": FEEDBACK_KINDS,
    "kb.step.": KB_STEPS,
    "config.channel_": ("sms", "mail"),
}

# Page-script prefixes (keys without "js.") -> values.
JS_DYNAMIC: dict[str, Iterable[str]] = {
    "status.": values(Status),
    "type.": ORDER_TYPES,
    "cc.spy.": SPY_MODES,
    "cc.done.": [name.removeprefix("_do_") for name in dir(CallControl) if name.startswith("_do_")],
    # callcenter.callcontrol.models.Callback.status
    "cc.cb.": ("waiting", "calling", "done", "failed", "refused", "task"),
    # callcenter.callcontrol.callbacks.MISSED_KINDS: a missed call's item in the list
    "cc.cbkind.": ("abandoned", "closed", "followup"),
    "cc.cbwhy.": ("no_reply", "no_sms"),
    # callcenter.dialout.policy: why a number is not dialled
    "dialout.": dialout_policy.REASONS,
    "conn.": _set_conn_states(),
    # console.js fillPop narrows the call's state and source to these
    "state.": ("ringing", "talking"),
    "source.": ("carrier", "12345"),
    "seatstate.": _seat_states(),
    # phone.js: the phone's registration state and its call's state
    "phone.status.": ("waiting", "connecting", "registered", "unregistered", "failed", "offline", "disabled"),
    "phone.call.": ("ringing", "talking"),
}
# Prefixes whose script shows the raw value when the catalogue has no label (console.js
# outcomeLabel): the call outcomes timeout, ivr and failed are shown as they are.
JS_OPEN = {"outcome."}
# String concatenations in the scripts that are not catalogue keys.
JS_NOT_KEYS = {
    "seat.",  # console.js: the seat's bus topic, "seat." + ext
    # phone.js: the seat's phone settings in localStorage
    "cc.phone.autoAnswer.",
    "cc.phone.mic.",
    "cc.phone.speaker.",
}


def _literal_and_prefix(node: ast.expr) -> tuple[str | None, str | None]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, None
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return None, head.value
    return None, None


def _key_argument(call: ast.Call) -> ast.expr | None:
    """The key argument of ``t(key, ...)`` or ``translate(lang, key, ...)``."""
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
    position = {"t": 0, "translate": 1}.get(name or "")
    if position is None or len(call.args) <= position:
        return None
    return call.args[position]


def _carried_key(node: ast.expr) -> str | None:
    """A key handed to a template to translate: ``"login.failed"`` or ``("login.failed", {...})``."""
    if isinstance(node, ast.Tuple) and node.elts:
        node = node.elts[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.fullmatch(node.value):
        return node.value
    return None


# Names under which the web modules pass a key for the template to translate (t(error), t(message)).
CARRIERS = {"error", "message", "flash"}


def python_keys() -> tuple[dict[str, str], dict[str, str]]:
    """Literal keys and dynamic prefixes in the product's Python code, each with where it is."""
    keys: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                carried: list[ast.expr] = []
                if isinstance(node, ast.Call):
                    arg = _key_argument(node)
                    if arg is not None:
                        key, prefix = _literal_and_prefix(arg)
                        if key is not None:
                            keys.setdefault(key, f"{where}:{node.lineno}")
                        if prefix is not None:
                            prefixes.setdefault(prefix, f"{where}:{node.lineno}")
                    carried += [kw.value for kw in node.keywords if kw.arg in CARRIERS]
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and target.id in CARRIERS:
                            carried.append(node.value)
                        if (
                            isinstance(target, ast.Subscript)
                            and _literal_and_prefix(target.slice)[0] in CARRIERS
                        ):
                            carried.append(node.value)
                for value in carried:
                    key = _carried_key(value)
                    if key is not None:
                        keys.setdefault(key, f"{where}:{getattr(value, 'lineno', 0)}")
    # the report columns: (figure key, catalogue key)
    for _, label in exports.QUEUE_COLUMNS + exports.SEAT_COLUMNS:
        keys.setdefault(label, "callcenter/statistics/exports.py")
    return keys, prefixes


TEMPLATE_CALL = re.compile(r"""(?<![\w.])t\(\s*(["'])([^"']*)\1\s*(~|,|\))""")


def template_keys() -> tuple[dict[str, str], dict[str, str]]:
    keys: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for path in sorted(TEMPLATES.glob("*.html")):
        for m in TEMPLATE_CALL.finditer(path.read_text(encoding="utf-8")):
            (prefixes if m.group(3) == "~" else keys).setdefault(m.group(2), path.name)
    return keys, prefixes


SCRIPT_CALL = re.compile(r"""(?<![\w.])t\(\s*(["'])([^"']*)\1\s*(\+|,|\))""")
SCRIPT_PREFIX = re.compile(r"""(["'])([a-z_]+(?:\.[\w]+)*\.)\1\s*\+""")
SCRIPT_LABEL = re.compile(r"""(?<![\w.])label\(\s*"(\w+)"\s*,""")  # orders_console.js label(prefix, value)
SCRIPT_STRING = re.compile(r"""(["'])([a-z_]+(?:\.[\w]+)+)\1""")


def script_keys() -> tuple[dict[str, str], dict[str, str]]:
    """Keys (without "js.") the page scripts ask for, literal or passed around, and dynamic prefixes."""
    namespaces = {k.split(".")[1] for k in CATALOGUES["zh"] if k.startswith("js.")}
    keys: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for path in sorted(SCRIPTS.glob("*.js")):
        src = path.read_text(encoding="utf-8")
        for m in SCRIPT_CALL.finditer(src):
            (prefixes if m.group(3) == "+" else keys).setdefault(m.group(2), path.name)
        for m in SCRIPT_PREFIX.finditer(src):
            prefixes.setdefault(m.group(2), path.name)
        for m in SCRIPT_LABEL.finditer(src):
            prefixes.setdefault(m.group(1) + ".", path.name)
        # a key held in a variable before it reaches t() (console.js: outcome(r, "register.done"))
        for m in SCRIPT_STRING.finditer(src):
            if m.group(2).split(".")[0] in namespaces:
                keys.setdefault(m.group(2), path.name)
    return keys, prefixes


def _missing(keys: Iterable[str]) -> dict[str, list[str]]:
    return {lang: sorted(k for k in keys if k not in cat) for lang, cat in CATALOGUES.items()}


def _none_missing(keys: Iterable[str]) -> dict[str, list[str]]:
    return {lang: [] for lang in CATALOGUES}


@pytest.mark.parametrize("source", ["templates", "python"])
def test_every_literal_key_is_in_both_languages(source):
    keys, _ = template_keys() if source == "templates" else python_keys()
    assert len(keys) > 20, "the scan found almost nothing: has the call syntax changed?"
    missing = _missing(keys)
    assert missing == _none_missing(keys), {lang: {k: keys[k] for k in ks} for lang, ks in missing.items()}


def test_every_script_key_is_in_both_languages():
    keys, _ = script_keys()
    assert len(keys) > 20
    full = {f"js.{k}": where for k, where in keys.items()}
    missing = _missing(full)
    assert missing == _none_missing(full), {lang: {k: full[k] for k in ks} for lang, ks in missing.items()}


def test_every_dynamic_prefix_has_a_vocabulary():
    used = {**template_keys()[1], **python_keys()[1]}
    assert {p: w for p, w in used.items() if p not in DYNAMIC} == {}
    js_used = script_keys()[1]
    assert {p: w for p, w in js_used.items() if p not in {*JS_DYNAMIC, *JS_OPEN, *JS_NOT_KEYS}} == {}


@pytest.mark.parametrize("prefix", sorted(DYNAMIC))
def test_every_value_of_a_dynamic_key_has_a_label(prefix):
    keys = [prefix + str(v) for v in DYNAMIC[prefix]]
    assert keys
    assert _missing(keys) == _none_missing(keys)


@pytest.mark.parametrize("prefix", sorted(JS_DYNAMIC))
def test_every_value_of_a_dynamic_script_key_has_a_label(prefix):
    keys = ["js." + prefix + str(v) for v in JS_DYNAMIC[prefix]]
    assert keys
    assert _missing(keys) == _none_missing(keys)
