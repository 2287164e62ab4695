"""UI strings: Simplified Chinese first, English by a switch; the catalogues are data files.

Each language is a folder of key-based JSON files under ``callcenter/locales/`` (``zh-CN/``,
``en/``), one file per domain (core, console, callcontrol, ivr, orders, basic, messages, stats),
flat ``"domain.name": "text"`` pairs with ``{name}`` placeholders. This is the style of Home
Assistant's ``translations/<lang>.json`` and of i18next rather than gettext/Babel: the product has
two languages and no translators' tooling to serve, the keys are already what templates and code
call, and the page's script reads the ``js.*`` keys as JSON as they are (see
``web_console.i18n.js_catalogue``), which ``.po``/``.mo`` files would need a converter for.
The keys stay flat (not nested objects) because some are both a label and a prefix
(``orders.urgency`` and ``orders.urgency.normal``) and so a key can be found with grep.
Which file a key lives in only helps the reader; a key must not appear in two files of a language.

The catalogues are loaded once, at import. It sits in the ground package because the daily report
e-mail (``callcenter.statistics.daily``) translates too, not only the web console.

A key missing from a language is a bug: ``tests/callcenter/test_i18n.py`` checks every key that
templates, Python code and the JavaScript use, and conftest makes a missing key raise in tests
(``strict_keys``). At run time a page must not break for it: the key falls back to Chinese, then
to the key itself, and a warning is logged once per key and language.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LANG = "zh"
LANGS = ("zh", "en")
LOCALES = Path(__file__).resolve().with_name("locales")
# The folder of each language's files under LOCALES.
LOCALE_DIRS = {"zh": "zh-CN", "en": "en"}


class MissingKey(KeyError):
    """A catalogue key that a language does not hold (raised only in strict mode)."""


def load_catalogue(folder: Path) -> dict[str, str]:
    """Every ``*.json`` file of a language folder merged into one key → text mapping."""
    catalogue: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        strings = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(strings, dict):
            raise ValueError(f"{path}: not a JSON object")
        for key, text in strings.items():
            if not isinstance(text, str):
                raise ValueError(f"{path}: {key} is not a string")
            if key in catalogue:
                raise ValueError(f"{path}: {key} is already in another file of {folder.name}")
            catalogue[key] = text
    return catalogue


CATALOGUES: dict[str, dict[str, str]] = {lang: load_catalogue(LOCALES / LOCALE_DIRS[lang]) for lang in LANGS}

_strict = False
_warned: set[tuple[str, str]] = set()


def strict_keys(on: bool = True) -> None:
    """Make a missing key raise ``MissingKey`` instead of a warning (the test suite turns this on)."""
    global _strict
    _strict = on


def _missing(lang: str, key: str) -> None:
    if _strict:
        raise MissingKey(f"{key!r} is not in the {lang} catalogue")
    if (lang, key) not in _warned:
        _warned.add((lang, key))
        log.warning("catalogue key %r is missing in %s", key, lang)


def translate(lang: str, key: str, **params: object) -> str:
    """The text of ``key`` in ``lang`` (an unknown language reads Chinese), placeholders filled."""
    catalogue = CATALOGUES.get(lang, CATALOGUES[DEFAULT_LANG])
    text = catalogue.get(key)
    if text is None:
        _missing(lang, key)
        text = CATALOGUES[DEFAULT_LANG].get(key, key)
    if params:
        text = text.format(**params)
    return text


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **params)`` bound to one language, as templates and reports call it."""

    def t(key: str, **params: object) -> str:
        return translate(lang, key, **params)

    return t
