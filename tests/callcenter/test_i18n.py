"""The catalogues: loaded from the JSON files, the same keys in both languages, missing keys caught."""

from __future__ import annotations

import json
import logging
import string

import pytest

from callcenter import i18n
from callcenter.i18n import CATALOGUES, MissingKey, load_catalogue, translate, translator

ZH, EN = CATALOGUES["zh"], CATALOGUES["en"]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_catalogues_have_the_same_keys():
    assert set(ZH) == set(EN)
    assert all(v.strip() for v in ZH.values()) and all(v.strip() for v in EN.values())


def test_both_languages_fill_the_same_placeholders():
    assert {k: _fields(v) for k, v in EN.items()} == {k: _fields(v) for k, v in ZH.items()}


def test_every_language_folder_has_the_same_files():
    names = {
        lang: sorted(p.name for p in (i18n.LOCALES / d).glob("*.json"))
        for lang, d in i18n.LOCALE_DIRS.items()
    }
    assert names["zh"] == names["en"] and names["zh"]
    for name in names["zh"]:
        keys = [
            set(json.loads((i18n.LOCALES / d / name).read_text(encoding="utf-8")))
            for d in i18n.LOCALE_DIRS.values()
        ]
        assert keys[0] == keys[1], name


def test_a_key_in_two_files_is_refused(tmp_path):
    (tmp_path / "a.json").write_text('{"x.y": "1"}', encoding="utf-8")
    (tmp_path / "b.json").write_text('{"x.y": "2"}', encoding="utf-8")
    with pytest.raises(ValueError, match="x.y"):
        load_catalogue(tmp_path)


def test_translate_fills_placeholders_and_reads_chinese_for_an_unknown_language():
    assert translate("en", "orders.total", n=3) == "3 orders"
    assert translator("zh")("orders.total", n=3) == "共 3 条"
    assert translate("fr", "app.title") == ZH["app.title"]


def test_a_missing_key_is_an_error_in_the_tests():
    with pytest.raises(MissingKey):
        translate("en", "no.such.key")


def test_a_missing_key_at_run_time_renders_the_key_and_warns_once(caplog):
    i18n.strict_keys(False)
    try:
        with caplog.at_level(logging.WARNING, logger="callcenter.i18n"):
            assert translate("en", "no.such.label") == "no.such.label"
            assert translate("en", "no.such.label") == "no.such.label"
    finally:
        i18n.strict_keys(True)
    assert [r.getMessage() for r in caplog.records] == ["catalogue key 'no.such.label' is missing in en"]
