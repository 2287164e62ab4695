"""The console's side of the UI strings: the page's language and the strings its script reads.

The catalogues and ``translate`` are in ``callcenter.i18n`` (the daily report e-mail uses them
too); this module adds what only a web page needs: the BCP 47 tag for ``<html lang>``, reading a
language code from the query or the session, and the ``js.*`` keys handed to ``static/i18n.js``.
"""

from __future__ import annotations

from callcenter.i18n import CATALOGUES, DEFAULT_LANG, LANGS, translator

# DEFAULT_LANG and translator are re-exported: the web modules take everything about language from here.
__all__ = ["DEFAULT_LANG", "LOCALE_TAGS", "js_catalogue", "normalize_lang", "translator"]

# The BCP 47 tag for <html lang> and for the browser's date/time formatting.
LOCALE_TAGS = {"zh": "zh-CN", "en": "en-GB"}


def normalize_lang(value: str | None) -> str | None:
    """``zh``/``en`` for a recognised language code (``zh-CN``, ``en_GB``…), else None."""
    if not value:
        return None
    code = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return code if code in LANGS else None


def js_catalogue(lang: str) -> dict[str, str]:
    """The ``js.*`` strings of a language, keys without the prefix."""
    cat = CATALOGUES.get(lang, CATALOGUES[DEFAULT_LANG])
    return {k.removeprefix("js."): v for k, v in cat.items() if k.startswith("js.")}
