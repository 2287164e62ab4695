"""The IVR's logic without Asterisk: opening hours with China's holidays and make-up working
days, the injectable clock, menu checks, caller facts (priority, last seat), prompt generation."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from callcenter.calls.models import CallRecord
from callcenter.clock import china_now
from callcenter.config import CHINA_TZ
from callcenter.database import Reads, SqliteReads, get_engine, hot_reads, session_scope
from callcenter.ivr import service
from callcenter.ivr.models import CallerRequest, IvrOption, ServiceHours
from callcenter.ivr.routing import CallerFacts, caller_facts
from callcenter.residents.models import Resident

OFFICE = ServiceHours(number="96346", schedule="workdays", open_time="08:30", close_time="17:30")


def china(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-11-27T10:00", True),  # Friday morning
        ("2026-11-27T08:29", False),  # before opening
        ("2026-11-27T17:30", False),  # closing time is closed
        ("2026-11-28T10:00", False),  # Saturday
        ("2026-10-01T10:00", False),  # National Day
        ("2026-02-14T10:00", True),  # a Saturday made a working day (调休) for the Spring Festival
    ],
)
def test_office_hours_follow_chinas_working_days(at, open_):
    assert service.is_open(OFFICE, china(at)) is open_


def test_daily_and_always_schedules():
    daily = ServiceHours(number="1", schedule="daily", open_time="08:00", close_time="24:00")
    assert service.is_open(daily, china("2026-10-01T23:59"))  # holidays too
    assert not service.is_open(daily, china("2026-10-01T07:59"))
    assert service.is_open(None, china("2026-10-01T03:00"))  # no hours: always open
    assert service.is_open(ServiceHours(number="1", schedule="always"), china("2026-10-01T03:00"))


def test_the_clock_can_be_frozen(settings):
    assert abs((china_now(settings) - datetime.now(CHINA_TZ)).total_seconds()) < 5
    settings.clock = "2026-10-01T10:00:00"
    assert china_now(settings) == china("2026-10-01T10:00")
    settings.clock = "2026-10-01T02:00:00+00:00"  # an aware value keeps its zone
    assert china_now(settings) == china("2026-10-01T10:00")


def test_hours_in_words_and_the_closed_prompt():
    assert service.hours_text(OFFICE) == "周一至周五上午8点半至下午5点半，法定节假日休息，调休上班日照常服务"
    prompt = service.closed_prompt(OFFICE)
    assert "非工作时间" in prompt and "留言请按1" in prompt and "回电请按2" in prompt
    assert "幺幺零" in prompt  # the emergency numbers, as in the welcome
    custom = ServiceHours(number="1", closed_text=" 下班了 ")
    assert service.closed_prompt(custom) == "下班了"


def test_welcome_names_the_emergency_numbers():
    from asterisk_conf.sounds import PROMPTS

    assert all(n in PROMPTS["welcome"] for n in ("幺幺零", "幺幺九", "幺二零"))


@pytest.mark.parametrize(
    ("schedule", "open_time", "close_time", "ok"),
    [
        ("workdays", "08:30", "17:30", True),
        ("daily", "00:00", "24:00", True),
        ("always", "", "", True),
        ("weekly", "08:30", "17:30", False),
        ("daily", "8:30", "17:30", False),
        ("daily", "18:00", "08:00", False),
        ("daily", "25:00", "26:00", False),
    ],
)
def test_hours_input_is_checked(schedule, open_time, close_time, ok):
    if ok:
        service.check_hours(schedule, open_time, close_time)
    else:
        with pytest.raises(service.MenuError):
            service.check_hours(schedule, open_time, close_time)


def test_menu_input_is_checked():
    queues = {"hotline", "elderly"}
    service.check_option("1", "elderly", queues, "老年服务请按1")
    for digit, queue, text in (
        ("a", "elderly", "x"),
        ("12", "elderly", "x"),
        ("1", "nope", "x"),
        ("1", "elderly", " \n"),
    ):
        with pytest.raises(service.MenuError):
            service.check_option(digit, queue, queues, text)
    assert service.clean_prompt("老年\n服务\x00请按1" + "长" * 500).startswith("老年 服务 请按1")
    assert len(service.clean_prompt("长" * 500)) == 200


def test_prompts_and_labels_come_from_the_menu(settings):
    with session_scope(settings) as s:
        s.add(
            IvrOption(
                number="96346",
                digit="1",
                queue_name="elderly",
                category="养老服务",
                label="老年服务",
                prompt_text="老年服务请按1",
            )
        )
        s.add(ServiceHours(number="96346"))
        s.add(ServiceHours(number="96345", schedule="always"))
        s.commit()
        prompts = service.ivr_prompts(s)
        labels = service.menu_labels(s)
    assert prompts["ivr_96346_1"] == "老年服务请按1"
    assert "closed_96346" in prompts and "closed_96345" not in prompts
    assert labels[("96346", "1")] == service.MenuChoice("1", "elderly", "养老服务", "老年服务")


def test_caller_facts_priority_and_last_seat(settings):
    now = datetime.now(UTC)
    with session_scope(settings) as s:
        alone = Resident(name="王秀英", phone="+8613919310001", elderly=True, lives_alone=True)
        vulnerable = Resident(name="陈", phone="+8613900000002", vulnerable=True)
        elderly = Resident(name="李", phone="+8613900000003", elderly=True)
        s.add_all([alone, vulnerable, elderly])
        for linkedid, seat, hours_ago in (("a", "1002", 30), ("b", "1003", 5), ("c", "", 1)):
            s.add(
                CallRecord(
                    linkedid=linkedid,
                    caller="+8613919310001",
                    seat=seat,
                    started_at=now - timedelta(hours=hours_ago),
                )
            )
        s.commit()
        ids = (alone.id, vulnerable.id, elderly.id)
    since = now - timedelta(hours=24)
    with get_engine(settings).connect() as conn, hot_reads(settings) as raw:
        assert isinstance(raw, SqliteReads)
        # The same answers through SQLAlchemy (networked databases) and plain sqlite3 (the route).
        for reads in (Reads(conn), raw):
            read = functools.partial(caller_facts, reads)
            facts = read("+8613919310001", since)
            # The latest answered call, not the missed one.
            assert facts == CallerFacts(resident_id=ids[0], priority=True, last_seat="1003")
            assert read("+8613900000002", since) == CallerFacts(resident_id=ids[1], priority=True)
            assert not read("+8613900000003", since).priority  # elderly, not alone
            assert read("+8613919310001", now - timedelta(hours=2)).last_seat == ""
            assert read("+8613999999999", since) == read(None, since) == CallerFacts()


def test_out_of_hours_items(settings):
    with session_scope(settings) as s:
        item = service.add_request(
            s,
            "voicemail",
            linkedid="1.1",
            caller="+8613919310001",
            caller_raw="13919310001",
            resident_id=None,
            did="96346",
            recording="1.1.wav",
        )
        service.add_request(
            s, "callback", linkedid="1.2", caller="", caller_raw="anonymous", resident_id=None, did="96346"
        )
        with pytest.raises(ValueError):
            service.add_request(s, "fax", linkedid="1.3", caller="", caller_raw="", resident_id=None, did="1")
        items = service.open_requests(s)
        assert [i["kind"] for i in items] == ["voicemail", "callback"]
        assert items[0]["has_recording"] and items[1]["caller"] == "anonymous"
        item.done_at = datetime.now(UTC)
        s.add(item)
        s.commit()
        assert [i["kind"] for i in service.open_requests(s)] == ["callback"]
        assert s.exec(select(CallerRequest)).all()


def test_prompts_are_spoken_again_only_when_their_text_changes(settings):
    from asterisk_conf import ivr_sounds, sounds
    from tests.conftest import require

    require("espeak-ng")
    require("sox")
    with session_scope(settings) as s:
        s.add(IvrOption(number="96346", digit="1", queue_name="elderly", prompt_text="按1"))
        s.commit()
    made = ivr_sounds.generate_ivr_prompts(settings)
    names = {p.name for p in made}
    assert "ivr_96346_1.wav" in names and "ivr_invalid.wav" in names
    assert {f"{d}.wav" for d in "0123456789"} <= names  # sounds/zh/digits for SayDigits
    assert (ivr_sounds.digits_dir(settings) / "7.wav").read_bytes()[:4] == b"RIFF"
    assert ivr_sounds.generate_ivr_prompts(settings) == []
    with session_scope(settings) as s:
        o = s.exec(select(IvrOption)).one()
        o.prompt_text = "老年服务请按1"
        s.add(o)
        s.commit()
    assert [p.name for p in ivr_sounds.generate_ivr_prompts(settings)] == ["ivr_96346_1.wav"]
    # An uploaded recording replaces the spoken prompt (converted to 8 kHz mono).
    wav = sounds.sounds_dir(settings) / "ivr_96346_1.wav"
    sha = ivr_sounds.store_upload(settings, wav.read_bytes())
    with session_scope(settings) as s:
        o = s.exec(select(IvrOption)).one()
        o.prompt_upload = sha
        s.add(o)
        s.commit()
    assert [p.name for p in ivr_sounds.generate_ivr_prompts(settings)] == ["ivr_96346_1.wav"]
    assert wav.with_name(wav.name + ".sha256").read_text().strip() == f"upload:{sha}"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "empty"),
        (b"ID3\x03" + b"\x00" * 100, "MPEG"),
        (b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk", "length"),
    ],
)
def test_bad_uploads_are_refused(settings, data, error):
    from asterisk_conf.ivr_sounds import UploadError, store_upload
    from tests.conftest import require

    require("sox")
    with pytest.raises(UploadError, match=error):
        store_upload(settings, data)
    settings.prompt_upload_max_bytes = 10
    with pytest.raises(UploadError, match="larger"):
        store_upload(settings, b"RIFF" + b"\x00" * 20)
