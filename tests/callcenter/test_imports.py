"""Basic data and resident imports: row-by-row reports, all or nothing, duplicates."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlmodel import select

from callcenter.database import session_scope
from callcenter.directory.imports import ImportFileError, read_table
from callcenter.directory.models import Community, Grid, Jurisdiction, Outlet
from callcenter.residents.imports import import_table, valid_id_number
from callcenter.residents.models import Resident


def _csv(text: str) -> list[dict[str, str]]:
    return read_table("x.csv", text.encode("utf-8-sig"))


def _xlsx(rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _count(settings, model) -> int:
    with session_scope(settings) as s:
        return len(s.exec(select(model)).all())


def test_id_number_check_digit():
    assert valid_id_number("11010519491231002X")
    assert not valid_id_number("110105194912310021")
    assert not valid_id_number("1101051949123")


def test_basic_data_chain_from_csv_and_excel(settings):
    with session_scope(settings) as s:
        r = import_table(
            s, settings, "jurisdictions", _csv("名称,区划代码\n十里店街道,620105001\n孔家崖街道,620105002\n")
        )
    assert r.ok and r.imported == 2
    with session_scope(settings) as s:
        r = import_table(
            s,
            settings,
            "communities",
            _csv("社区,街道,城市社区\n十里店东社区,十里店街道,是\n桃林村,孔家崖街道,否\n"),
        )
    assert r.ok and r.imported == 2
    data = _xlsx([["网格", "社区"], ["第1网格", "十里店东社区"], ["第2网格", "十里店东社区"], [None, None]])
    with session_scope(settings) as s:
        r = import_table(s, settings, "grids", read_table("grids.xlsx", data))
    assert r.ok and r.imported == 2 and _count(settings, Grid) == 2
    with session_scope(settings) as s:
        r = import_table(s, settings, "service_areas", _csv("片区,社区\n十里店片区,十里店东社区；桃林村\n"))
    assert r.ok
    outlets = _xlsx(
        [
            ["名称", "类型", "社区", "电话", "短信号码", "邮箱", "工作时间"],
            [
                "十里店服务站",
                "服务网点",
                "十里店东社区",
                13900000001.0,
                "0931-8123456",
                "a@x.cn",
                "08:30-17:30",
            ],
        ]
    )
    with session_scope(settings) as s:
        r = import_table(s, settings, "outlets", read_table("o.xlsx", outlets))
    assert r.ok, r.errors
    with session_scope(settings) as s:
        o = s.exec(select(Outlet)).one()
        assert (o.phone, o.phones, o.email, o.working_hours) == (
            "+8613900000001",
            "+869318123456",
            "a@x.cn",
            "08:30-17:30",
        )
        # What it serves is routing rules: a file that still fills 服务类别 / 服务片区 is refused.
        bad = _xlsx(
            [["名称", "社区", "服务片区", "电话"], ["另一站", "十里店东社区", "十里店片区", "13900000002"]]
        )
        r = import_table(s, settings, "outlets", read_table("o.xlsx", bad))
        assert not r.ok and "派单规则" in r.errors[0][1]
        assert s.exec(select(Community).where(Community.name == "桃林村")).one().urban is False


def test_a_bad_row_imports_nothing_and_is_reported(settings):
    with session_scope(settings) as s:
        s.add(Jurisdiction(name="十里店街道"))
        s.commit()
    text = (
        "社区,街道\n甲社区,十里店街道\n乙社区,不存在街道\n,十里店街道\n丙社区,十里店街道\n甲社区,十里店街道\n"
    )
    with session_scope(settings) as s:
        r = import_table(s, settings, "communities", _csv(text))
    assert not r.ok and r.imported == 0
    assert [row for row, _ in r.errors] == [3, 4, 6]
    assert "不存在街道" in r.errors[0][1] and "required" in r.errors[1][1] and "row 2" in r.errors[2][1]
    assert _count(settings, Community) == 0


def test_file_errors(settings):
    with pytest.raises(ImportFileError):
        read_table("x.pdf", b"%PDF")
    with pytest.raises(ImportFileError):
        read_table("x.xlsx", b"not a zip")
    with session_scope(settings) as s, pytest.raises(ImportFileError, match="missing columns"):
        import_table(s, settings, "communities", _csv("名称\n甲社区\n"))
    gbk = "名称,区划代码\n十里店街道,1\n".encode("gb18030")
    assert read_table("x.csv", gbk)[0]["名称"] == "十里店街道"


def test_residents_with_duplicates(settings):
    with session_scope(settings) as s:
        j = Jurisdiction(name="十里店街道")
        s.add(j)
        s.flush()
        c = Community(jurisdiction_id=j.id, name="十里店东社区")
        s.add(c)
        s.flush()
        s.add(Grid(community_id=c.id, name="第1网格"))
        s.add(Resident(name="在册", phone="+8613900000009", id_number="11010519491231002X"))
        s.commit()
    text = (
        "姓名,手机,固定电话,身份证号,社区,网格,独居\n"
        "王秀英,139 1931 0001,0931-8123456,,十里店东社区,第1网格,是\n"
        "王秀英重复,+86 13919310001,,,十里店东社区,,\n"  # the same phone as row 2
        "在册重复,13900000009,,,,,\n"  # on file by phone
        "身份证重复,13900000010,,11010519491231002x,,,\n"  # on file by ID number
        "号码不对,12345,,,,,\n"
        "李四,13900000011,,110105194912310021,,,\n"  # bad check digit
    )
    with session_scope(settings) as s:
        r = import_table(s, settings, "residents", _csv(text))
    assert not r.ok and _count(settings, Resident) == 1
    assert [row for row, _ in r.errors] == [3, 4, 5, 6, 7]
    assert "row 2" in r.errors[0][1] and "on file" in r.errors[1][1] and "ID number" in r.errors[2][1]

    fixed = (
        "姓名,手机,固定电话,身份证号,社区,网格,独居\n"
        "王秀英,139 1931 0001,0931-8123456,,十里店东社区,第1网格,是\n"
        "王秀英重复,+86 13919310001,,,,,\n"
        "在册重复,13900000009,,,,,\n"
    )
    with session_scope(settings) as s:
        r = import_table(s, settings, "residents", _csv(fixed), skip_duplicates=True)
    assert r.ok and r.imported == 1 and [row for row, _ in r.skipped] == [3, 4]
    with session_scope(settings) as s:
        w = s.exec(select(Resident).where(Resident.name == "王秀英")).one()
        assert (w.phone, w.phone2, w.lives_alone) == ("+8613919310001", "+869318123456", True)
        assert w.grid_id is not None


def test_progress_is_reported(settings):
    seen = []
    rows = _csv("名称\n" + "".join(f"街道{i}\n" for i in range(120)))
    with session_scope(settings) as s:
        r = import_table(s, settings, "jurisdictions", rows, progress=lambda d, t: seen.append((d, t)))
    assert r.ok and r.imported == 120
    assert seen[0] == (1, 120) and seen[-1] == (120, 120) and len(seen) >= 3
