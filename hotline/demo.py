"""Demo data for Anning District (安宁区), Lanzhou, and synthetic residents for benchmarks.

``load_demo`` fills an empty database with the district's eight sub-district offices (街道), 59
communities (26 urban, 33 rural; the names are illustrative and marked ``demo``), their grids,
the hotline queue and its service number, service outlets, demo accounts and about 3000
synthetic residents, plus a short call and work-order history for a few fixed residents the
README and the tests rely on:

==========  ==================  =================================================================
name        phone(s)            what they show
==========  ==================  =================================================================
王秀英      +8613919310001      elderly, lives alone, emergency contact; 4 calls, 3 work orders
张建国      +869318123456       a landline caller (0931-8123456), elderly; 2 calls, 2 work orders
刘伟        +8613893120002,     mobile plus a landline in ``phone2``; a 12345 transfer; 2 orders
            +869314567890
陈桂兰      +8615009310003      elderly, lives alone, vulnerable, rural (桃林村); 1 call, 1 order
==========  ==================  =================================================================

Accounts (all with ``DEMO_PASSWORD``; ``must_change_password`` in production): ``admin``, ``supervisor``,
seats ``seat1001``..``seat1004`` (extensions 1001-1004, members of ``hotline``) and ``outlet1``
(the first outlet). Every name, number and ID number here is made up.

``bulk_residents`` inserts many synthetic residents quickly (1,000,000 for the screen-pop
benchmark); ``bulk_phone(i)`` is the phone number of the i-th of them.
"""

from __future__ import annotations

import random
import secrets
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from math import log
from operator import mul
from typing import NamedTuple

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from callcenter.accounts.models import Account, Phone, QueueMembership, Role
from callcenter.accounts.service import hash_password
from callcenter.calls.models import CallRecord
from callcenter.config import CHINA_TZ
from callcenter.database import saved_id, table_of
from callcenter.directory.models import CallQueue, Community, Grid, Jurisdiction, Outlet, ServiceNumber
from callcenter.ivr.demo import load_ivr_demo
from callcenter.knowledge import demo as knowledge_demo
from callcenter.knowledge.models import Article
from callcenter.residents.models import Resident
from callcenter.statistics.demo import load_history
from dispatch.demo import DemoOrder, PastOrder, load_dispatch_demo
from dispatch.models import Category, WorkOrder

DEMO_PASSWORD = "demo12345"
# Settings.sip_realm's default; each account keeps the realm its digest was made for.
DEMO_SIP_REALM = "callcenter"

HOTLINE_QUEUE = "hotline"
HOTLINE_QUEUE_TITLE = "社区服务热线"
HOTLINE_DID = "96345"
HOTLINE_DID_TITLE = "安宁区社区服务热线"

SEAT_EXTENSIONS = ("1001", "1002", "1003", "1004")
SEAT_DISPLAY_NAMES = ("座席张敏", "座席李娜", "座席王磊", "座席赵静")
DEFAULT_SEAT_CONTACT_BASE_PORT = 5081
# The supervisor's desk phone (listen, whisper, barge ring it): base port + 9
SUPERVISOR_EXTENSION = "1900"

ELDERLY_AGE = 60


# The fixed residents (see the module docstring).
WANG_XIUYING_PHONE = "+8613919310001"
ZHANG_JIANGUO_LANDLINE = "+869318123456"
LIU_WEI_PHONE = "+8613893120002"
LIU_WEI_LANDLINE = "+869314567890"
CHEN_GUILAN_PHONE = "+8615009310003"

# Sub-district office -> (code, urban communities with their streets, rural villages).
DISTRICT: tuple[tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]], ...] = (
    (
        "十里店街道",
        "620105001",
        (
            ("十里店东社区", ("十里店南街", "北滨河西路")),
            ("十里店西社区", ("十里店南街", "安宁西路")),
            ("北滨河路社区", ("北滨河西路", "滨河花园路")),
            ("建宁路社区", ("建宁路", "建宁东路")),
        ),
        ("十里店村",),
    ),
    (
        "培黎街道",
        "620105002",
        (
            ("培黎社区", ("培黎街", "安宁西路")),
            ("万里社区", ("万里路", "万新路")),
            ("通达社区", ("通达路", "培黎街")),
            ("桃海社区", ("桃海路", "北滨河西路")),
            ("莫高社区", ("莫高大道", "安宁西路")),
        ),
        (),
    ),
    (
        "孔家崖街道",
        "620105003",
        (
            ("孔家崖社区", ("孔家崖路", "安宁西路")),
            ("安宁西路社区", ("安宁西路", "明仁路")),
            ("元台子社区", ("元台子路", "宝石花路")),
        ),
        ("孔家崖村", "崖川村", "吊场村"),
    ),
    (
        "西路街道",
        "620105004",
        (
            ("西路社区", ("西路街", "安宁东路")),
            ("费家营社区", ("费家营街", "安宁东路")),
            ("安宁东路社区", ("安宁东路", "交大路")),
            ("交大社区", ("交大路", "安宁东路")),
            ("师大社区", ("师大路", "安宁东路")),
        ),
        (),
    ),
    (
        "银滩路街道",
        "620105005",
        (
            ("银滩路社区", ("银滩路", "银安路")),
            ("万新社区", ("万新路", "银滩路")),
            ("宝石花社区", ("宝石花路", "北滨河西路")),
            ("长风社区", ("长风路", "银滩路")),
            ("黄河家园社区", ("黄河家园路", "北滨河西路")),
        ),
        (),
    ),
    (
        "刘家堡街道",
        "620105006",
        (
            ("刘家堡社区", ("刘家堡路", "北滨河西路")),
            ("水挂庄社区", ("水挂庄路", "刘家堡路")),
        ),
        ("刘家堡村", "河湾堡村", "深沟村", "任家庄村", "罗家村", "楼房坪村", "崔家庄村"),
    ),
    (
        "安宁堡街道",
        "620105007",
        (("安宁堡社区", ("安宁堡路", "桃林路")),),
        (
            "安宁堡村",
            "桃林村",
            "东湾村",
            "李家湾村",
            "马家湾村",
            "宋家滩村",
            "魏家庄村",
            "陈官营村",
            "孙家台村",
            "刘家湾村",
            "杨家坪村",
        ),
    ),
    (
        "沙井驿街道",
        "620105008",
        (("沙井驿社区", ("沙井驿路", "北滨河西路")),),
        (
            "沙井驿村",
            "大沙坪村",
            "营门村",
            "邢家湾村",
            "李麻沟村",
            "石门沟村",
            "何家营村",
            "北城村",
            "柳家营村",
            "张家寺村",
            "西沟村",
        ),
    ),
)

_STREETS = ("安宁西路", "安宁东路", "北滨河西路", "建宁路", "万新路", "银滩路", "培黎街", "莫高大道")

# (name, kind, community or None for district-wide, categories, phone, e-mail); the first one
# is the outlet user's.
OUTLETS: tuple[tuple[str, str, str | None, str, str, str], ...] = (
    (
        "安宁区居家养老服务中心",
        "outlet",
        None,
        "养老服务,助餐,助浴,陪诊",
        "+8613909310101",
        "yanglao@example.org",
    ),
    ("物业维修服务站", "outlet", "培黎社区", "物业维修,公共设施", "+8613909310102", "wuye@example.org"),
    ("家政服务网点", "outlet", "万新社区", "家政保洁,护工,月嫂", "+8613909310103", "jiazheng@example.org"),
    (
        "社区卫生服务站",
        "outlet",
        "十里店东社区",
        "医疗咨询,上门巡诊,慢病随访",
        "+8613909310104",
        "weisheng@example.org",
    ),
    ("粮油配送供应商", "supplier", None, "粮油配送,生活物资", "+8613909310105", "liangyou@example.org"),
    (
        "水电维修网点",
        "outlet",
        "银滩路社区",
        "水电维修,燃气报修,管道疏通",
        "+8613909310106",
        "shuidian@example.org",
    ),
)

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔"
)
# The commonest surnames first and more often: a rough frequency curve.
_SURNAME_WEIGHTS = tuple(1.0 / (1 + i / 8) for i in range(len(_SURNAMES)))
_MALE_CHARS = "伟强磊军勇杰涛斌明超刚平辉鹏华飞鑫波宁建国志文林海峰成东俊德福荣生龙元全兴安宏忠"
_FEMALE_CHARS = "秀英芳娟敏静丽燕艳霞玲桂兰红梅琴萍雪慧婷娜莉珍凤玉琳洁倩颖"
_ID_AREAS = ("620105",) * 8 + ("620102", "620103", "620104", "620111", "620121", "620122", "620123")
_MOBILE_PREFIXES = tuple(
    [f"13{d}" for d in range(10)] + [f"15{d}" for d in "012356789"] + [f"18{d}" for d in range(10)]
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_RELATIONS_OWN_SURNAME = ("儿子", "女儿", "侄子")
_RELATIONS_OTHER = ("女儿", "外甥女", "邻居")


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of an 18-digit resident ID number."""
    return _ID_CHECK[sum(map(mul, map(int, first17), _ID_WEIGHTS)) % 11]


def _id_number(area: str, birth: date, seq: int) -> str:
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


# bulk_phone: a bijection of [0, 10**9) so consecutive residents get unrelated-looking numbers.
# Bulk residents use 199 numbers, which load_demo (13x/15x/18x) never gives out.
_BULK_SPACE = 10**8
_BULK_MULT = 43_046_721  # 3**16, coprime to 10**8
_BULK_OFFSET = 30_211_546


def bulk_phone(i: int) -> str:
    """The E.164 phone number of the i-th resident made by ``bulk_residents`` (i from 0)."""
    if not 0 <= i < _BULK_SPACE:
        raise ValueError("bulk resident index out of range")
    return f"+86199{(i * _BULK_MULT + _BULK_OFFSET) % _BULK_SPACE:08d}"  # 199: valid, unused by the demo


@dataclass(frozen=True)
class _Place:
    community_id: int | None
    name: str
    urban: bool
    streets: tuple[str, ...]
    grid_ids: tuple[int | None, ...]


_STREETS_BY_COMMUNITY = {name: streets for _, _, urban, _ in DISTRICT for name, streets in urban}


class _ResidentMaker:
    """Synthetic resident rows (plain dicts for a Core insert), deterministic for a seed.

    Draws go through ``random()`` directly (``randint``/``choice`` cost several times more),
    which keeps a million rows to a few seconds of Python.
    """

    def __init__(
        self, rng: random.Random, places: list[_Place], year: int, elderly_share: float = 0.18
    ) -> None:
        self.rand = rng.random
        self.elderly_share = elderly_share
        self.places = places or [_Place(None, "", True, _STREETS, (None,))]
        # Urban communities are denser: three residents for every one in a village.
        self.place_cum = list(accumulate(3 if p.urban else 1 for p in self.places))
        self.surname_cum = list(accumulate(_SURNAME_WEIGHTS))
        self.year = year

    def _int(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi]."""
        return lo + int(self.rand() * (hi - lo + 1))

    def _pick(self, seq):
        return seq[int(self.rand() * len(seq))]

    def surname(self) -> str:
        return _SURNAMES[bisect(self.surname_cum, self.rand() * self.surname_cum[-1])]

    def given(self, male: bool) -> str:
        chars = _MALE_CHARS if male else _FEMALE_CHARS
        if self.rand() < 0.3:
            return self._pick(chars)
        return self._pick(chars) + self._pick(chars)

    def mobile(self) -> str:
        """An 11-digit 13x/15x/18x mobile number (national form)."""
        return f"{self._pick(_MOBILE_PREFIXES)}{int(self.rand() * 10**8):08d}"

    def landline(self) -> str:
        """A Lanzhou landline (0931 + 7 digits, the first 2-8) in E.164."""
        return f"+86931{self._int(2, 8)}{int(self.rand() * 10**6):06d}"

    def address(self, place: _Place) -> str:
        if place.urban:
            return (
                f"{self._pick(place.streets)}{self._int(1, 300)}号"
                f"{self._int(1, 6)}单元{self._int(1, 18)}{self._int(1, 4):02d}室"
            )
        village = place.name if place.name.endswith("村") else f"{place.name}新村"
        return f"{village}{self._int(1, 9)}社{self._int(1, 120)}号"

    def row(self, phone: str) -> dict:
        rand = self.rand
        place = self.places[bisect(self.place_cum, rand() * self.place_cum[-1])]
        male = rand() < 0.49
        surname = self.surname()
        elderly = rand() < self.elderly_share
        if elderly:  # 60 and over, fewer with every year: median about 68
            age = min(ELDERLY_AGE + int(-12 * log(1.0 - rand())), 100)
        else:
            age = self._int(18, ELDERLY_AGE - 1)
        birth_year = self.year - age
        # Sequence code: its last digit is odd for men, even for women.
        seq = self._int(0, 99) * 10 + 2 * self._int(0, 4) + (1 if male else 0)
        first17 = f"{self._pick(_ID_AREAS)}{birth_year}{self._int(1, 12):02d}{self._int(1, 28):02d}{seq:03d}"
        lives_alone = elderly and rand() < 0.3
        contact = ""
        if lives_alone:
            if male or rand() < 0.5:
                relation, contact_surname = self._pick(_RELATIONS_OWN_SURNAME), surname
            else:
                relation, contact_surname = self._pick(_RELATIONS_OTHER), self.surname()
            contact_male = relation in ("儿子", "侄子") or (relation == "邻居" and rand() < 0.5)
            contact = f"{contact_surname}{self.given(contact_male)}({relation}) {self.mobile()}"
        if elderly:
            vulnerable = rand() < (0.15 if lives_alone else 0.03)
        else:
            vulnerable = rand() < 0.005
        return {
            "name": surname + self.given(male),
            "phone": phone,
            "phone2": self.landline() if rand() < 0.15 else "",
            "id_number": first17 + id_check_digit(first17),
            "address": self.address(place),
            "community_id": place.community_id,
            "grid_id": self._pick(place.grid_ids),
            "birth_year": birth_year,
            "elderly": elderly,
            "lives_alone": lives_alone,
            "vulnerable": vulnerable,
            "emergency_contact": contact,
            "demo": True,
        }


def _places(conn) -> list[_Place]:
    """The communities in the database with their grids, for placing synthetic residents."""
    grids: dict[int, list[int]] = {}
    rows = conn.execute(select(Grid.id, Grid.community_id).order_by(col(Grid.id))).all()
    for grid_id, community_id in rows:
        grids.setdefault(community_id, []).append(grid_id)
    places = []
    for cid, name, urban in conn.execute(
        select(Community.id, Community.name, Community.urban).order_by(col(Community.id))
    ).all():
        streets = _STREETS_BY_COMMUNITY.get(name, _STREETS)
        places.append(_Place(cid, name, bool(urban), streets, tuple(grids.get(cid) or [None])))
    return places


@dataclass(frozen=True)
class _FixedResident:
    name: str
    phone: str
    phone2: str
    id_number: str
    address: str
    community: str
    grid: str
    birth_year: int
    lives_alone: bool = False
    vulnerable: bool = False
    emergency_contact: str = ""


FIXED_RESIDENTS: tuple[_FixedResident, ...] = (
    _FixedResident(
        "王秀英",
        WANG_XIUYING_PHONE,
        "",
        _id_number("620105", date(1942, 3, 15), 22),
        "培黎街56号2单元301室",
        "培黎社区",
        "第1网格",
        1942,
        lives_alone=True,
        emergency_contact="李强(儿子) 13919310011",
    ),
    _FixedResident(
        "张建国",
        ZHANG_JIANGUO_LANDLINE,
        "",
        _id_number("620105", date(1950, 8, 2), 13),
        "十里店南街18号1单元602室",
        "十里店东社区",
        "第2网格",
        1950,
    ),
    _FixedResident(
        "刘伟",
        LIU_WEI_PHONE,
        LIU_WEI_LANDLINE,
        _id_number("620105", date(1986, 11, 9), 35),
        "银滩路120号3单元1102室",
        "银滩路社区",
        "第1网格",
        1986,
    ),
    _FixedResident(
        "陈桂兰",
        CHEN_GUILAN_PHONE,
        "",
        _id_number("620105", date(1938, 1, 27), 46),
        "桃林村3社12号",
        "桃林村",
        "第1网格",
        1938,
        lives_alone=True,
        vulnerable=True,
        emergency_contact="马丽(女儿) 18919310033",
    ),
)


class _HistoryCall(NamedTuple):
    """A call of a fixed resident's history, and the order taken on it (None: no order)."""

    phone: str  # the resident's
    days_ago: int
    hhmm: str
    seat: str  # "" when abandoned
    source: str  # carrier | 12345
    order_12345: str  # the 12345 platform's order number and summary (transfers)
    summary_12345: str
    order: DemoOrder | None


# History of the fixed residents. The orders go through the state machine (dispatch.demo), steps
# three hours apart from the call; the category is a code of the default category tree.
_HISTORY: tuple[_HistoryCall, ...] = (
    _HistoryCall(
        WANG_XIUYING_PHONE,
        20,
        "09:12",
        "1001",
        "carrier",
        "",
        "",
        DemoOrder(
            "LIFE-REPAIR",
            "求助",
            "独居老人家中厨房水管漏水，请求上门维修",
            ("派单", "签收", "办结", "回访", "归档"),
        ),
    ),
    _HistoryCall(
        WANG_XIUYING_PHONE,
        8,
        "10:35",
        "1002",
        "carrier",
        "",
        "",
        DemoOrder("ELDER", "咨询", "咨询社区老年助餐服务的办理条件和费用", ("派单", "签收", "办结")),
    ),
    _HistoryCall(WANG_XIUYING_PHONE, 3, "16:48", "", "carrier", "", "", None),
    _HistoryCall(
        WANG_XIUYING_PHONE,
        2,
        "08:57",
        "1001",
        "carrier",
        "",
        "",
        DemoOrder("ELDER", "求助", "下周二需到兰大二院复查，请求安排陪诊", ("派单",)),
    ),
    _HistoryCall(
        ZHANG_JIANGUO_LANDLINE,
        15,
        "14:20",
        "1003",
        "carrier",
        "",
        "",
        DemoOrder(
            "PROP-LIGHT",
            "投诉",
            "单元楼道路灯损坏一周无人维修，老人夜间上下楼不便",
            ("派单", "签收", "办理"),
        ),
    ),
    _HistoryCall(
        ZHANG_JIANGUO_LANDLINE,
        6,
        "11:05",
        "1004",
        "carrier",
        "",
        "",
        DemoOrder(
            "PROP-FACILITY",
            "建议",
            "建议在小区老年活动室增设座椅和扶手",
            ("派单", "签收", "办结", "回访"),
        ),
    ),
    _HistoryCall(
        LIU_WEI_PHONE,
        12,
        "19:30",
        "1002",
        "12345",
        "LZ12345-{date}-0387",
        "市民反映小区绿地内有私搭乱建",
        DemoOrder("PROP", "举报", "小区绿地内有人私搭乱建彩钢房，请核查处理", ("派单", "签收")),
    ),
    _HistoryCall(
        LIU_WEI_PHONE,
        4,
        "15:10",
        "1001",
        "carrier",
        "",
        "",
        DemoOrder(
            "PROP",
            "表扬",
            "表扬物业维修服务站师傅上门及时、服务热情",
            ("派单", "签收", "办结", "回访", "归档"),
        ),
    ),
    _HistoryCall(
        CHEN_GUILAN_PHONE,
        9,
        "09:40",
        "1003",
        "carrier",
        "",
        "",
        DemoOrder(
            "LIFE-GOODS",
            "求助",
            "独居老人冬季取暖煤不足，请求配送",
            ("派单", "签收", "办结", "回访"),
        ),
    ),
)


def _national(e164: str) -> str:
    """What the carrier sends as caller ID: 139... for mobiles, 0931... for landlines."""
    rest = e164.removeprefix("+86")
    return rest if rest.startswith("1") else "0" + rest


def _count(session: Session, column, *where) -> int:
    stmt = select(func.count(column))
    for cond in where:
        stmt = stmt.where(cond)
    return int(session.exec(stmt).one())


def demo_counts(session: Session) -> dict[str, int]:
    """How much basic data, residents and history the database holds."""
    return {
        "jurisdictions": _count(session, Jurisdiction.id),
        "communities": _count(session, Community.id),
        "urban_communities": _count(session, Community.id, Community.urban),
        "grids": _count(session, Grid.id),
        "residents": _count(session, Resident.id),
        "elderly": _count(session, Resident.id, Resident.elderly),
        "outlets": _count(session, Outlet.id),
        "accounts": _count(session, Account.id),
        "seats": _count(session, Account.id, Account.role == Role.SEAT.value),
        "queues": _count(session, CallQueue.id),
        "service_numbers": _count(session, ServiceNumber.id),
        "work_orders": _count(session, WorkOrder.id),
        "call_records": _count(session, CallRecord.id),
        "kb_articles": _count(session, Article.id),
    }


def demo_present(session: Session) -> bool:
    """Whether ``load_demo`` has run: its communities or its first fixed resident are there.

    Bulk residents alone (``demo`` too) do not count, so a benchmark may bulk-load first.
    """
    if session.exec(select(Community.id).where(Community.demo).limit(1)).first() is not None:
        return True
    stmt = select(Resident.id).where(Resident.phone == WANG_XIUYING_PHONE, Resident.demo).limit(1)
    return session.exec(stmt).first() is not None


def load_demo(
    session: Session,
    residents: int = 3000,
    seed: int = 2026,
    *,
    seat_contact_base_port: int | None = DEFAULT_SEAT_CONTACT_BASE_PORT,
    must_change_password: bool = True,
) -> dict:
    """Load the Anning District demo data and commit; nothing happens when it is already there.

    The demo accounts share a published password: ``must_change_password`` (the runner passes
    ``settings.production``) makes each set its own before anything else.

    ``residents`` is the total number of residents, the fixed ones included. Seats 1001-1004
    get fixed SIP contacts ``sip:seat100N@127.0.0.1:<base+N-1>`` for the command-line demo
    phones; with ``seat_contact_base_port=None`` the phones register instead.
    Returns the counts of what the database holds and ``created`` (False when skipped).
    """
    if demo_present(session):
        return {**demo_counts(session), "created": False}
    rng = random.Random(seed)
    now = datetime.now(CHINA_TZ).replace(microsecond=0)

    # Basic data: sub-district offices, communities, grids. Existing offices are reused by name.
    communities: dict[str, Community] = {}
    for jname, code, urban, rural in DISTRICT:
        office = session.exec(select(Jurisdiction).where(Jurisdiction.name == jname)).first()
        if office is None:
            office = Jurisdiction(name=jname, code=code)
            session.add(office)
            session.flush()
        for cname, is_urban in [(n, True) for n, _ in urban] + [(v, False) for v in rural]:
            community = Community(jurisdiction_id=saved_id(office), name=cname, urban=is_urban, demo=True)
            session.add(community)
            communities[cname] = community
    session.flush()
    grids: dict[tuple[str, str], Grid] = {}
    for cname, community in communities.items():
        for n in range(1, rng.randint(2, 6) + 1):
            grid = Grid(community_id=saved_id(community), name=f"第{n}网格")
            session.add(grid)
            grids[(cname, grid.name)] = grid
    session.flush()

    # The hotline queue and the service number that leads to it.
    if session.exec(select(CallQueue).where(CallQueue.name == HOTLINE_QUEUE)).first() is None:
        session.add(
            CallQueue(
                name=HOTLINE_QUEUE,
                title=HOTLINE_QUEUE_TITLE,
                strategy="rrmemory",
                agent_timeout=15,
                wrapup=5,
                service_level=15,
            )
        )
    if session.exec(select(ServiceNumber).where(ServiceNumber.number == HOTLINE_DID)).first() is None:
        session.add(ServiceNumber(number=HOTLINE_DID, title=HOTLINE_DID_TITLE, queue_name=HOTLINE_QUEUE))

    outlets = []
    for outlet_name, kind, home, categories, phone, email in OUTLETS:
        outlet = Outlet(
            name=outlet_name,
            kind=kind,
            community_id=communities[home].id if home else None,
            categories=categories,
            phone=phone,
            email=email,
            working_hours="周一至周日 08:00-20:00",  # shown on the basic-data pages
        )
        session.add(outlet)
        outlets.append(outlet)
    session.flush()

    _demo_accounts(session, hash_password, outlets[0].id, seat_contact_base_port, must_change_password)

    # Residents: the fixed ones through the ORM (the history needs their ids), the rest in bulk.
    fixed: dict[str, Resident] = {}
    for spec in FIXED_RESIDENTS[: max(residents, 0)]:
        resident = Resident(
            name=spec.name,
            phone=spec.phone,
            phone2=spec.phone2,
            id_number=spec.id_number,
            address=spec.address,
            community_id=communities[spec.community].id,
            grid_id=grids[(spec.community, spec.grid)].id,
            birth_year=spec.birth_year,
            elderly=now.year - spec.birth_year >= ELDERLY_AGE,
            lives_alone=spec.lives_alone,
            vulnerable=spec.vulnerable,
            emergency_contact=spec.emergency_contact,
            demo=True,
        )
        session.add(resident)
        fixed[spec.phone] = resident
    session.flush()

    maker = _ResidentMaker(rng, _places(session.connection()), now.year)
    used = {p for spec in FIXED_RESIDENTS for p in (spec.phone, spec.phone2) if p}
    rows = []
    for _ in range(residents - len(fixed)):
        phone = "+86" + maker.mobile()
        while phone in used:
            phone = "+86" + maker.mobile()
        used.add(phone)
        row = maker.row(phone)
        if row["phone2"]:
            while row["phone2"] in used:
                row["phone2"] = maker.landline()
            used.add(row["phone2"])
        rows.append(row)
    if rows:
        session.connection().execute(table_of(Resident).insert(), rows)

    past = _demo_calls(session, fixed, now)
    # Categories, service areas, routing rules, profiles; the calls' orders, orders in several states
    load_dispatch_demo(session, now, past)
    # A month of queue history up to yesterday, for the reports and scorecard
    load_history(session)
    # Skill queues, the 12345 queue, a menu and office hours on 96346
    load_ivr_demo(session, HOTLINE_QUEUE)
    # The knowledge base: articles about the district's services and places, with synonyms
    category_ids = {c.code: c.id for c in session.exec(select(Category)) if c.id is not None}
    places = [(name, list(urban), rural) for name, _code, urban, rural in DISTRICT]
    knowledge_demo.load(session, places, category_ids, now.date())
    session.commit()
    return {**demo_counts(session), "created": True}


def _demo_accounts(
    session: Session, hash_password, outlet_id: int | None, base_port: int | None, must_change: bool
) -> None:
    """admin, supervisor, seat1001..seat1004 (members of the hotline) and outlet1; existing
    usernames and extensions are left alone."""

    def exists(*cond) -> bool:
        return session.exec(select(Account.id).where(*cond).limit(1)).first() is not None

    people = [
        ("admin", "系统管理员", Role.ADMIN, None, None),
        ("supervisor", "值班长刘洋", Role.SUPERVISOR, SUPERVISOR_EXTENSION, None),
        ("outlet1", "居家养老服务中心", Role.OUTLET, None, outlet_id),
    ]
    for seat_ext, seat_name in zip(SEAT_EXTENSIONS, SEAT_DISPLAY_NAMES, strict=True):
        people.append((f"seat{seat_ext}", seat_name, Role.SEAT, seat_ext, None))
    for username, display, role, ext, outlet in people:
        if exists(Account.username == username) or (ext and exists(Account.extension == ext)):
            continue
        contact = ""
        if ext and base_port is not None:
            offset = SEAT_EXTENSIONS.index(ext) if ext in SEAT_EXTENSIONS else 9
            contact = f"sip:seat{ext}@127.0.0.1:{base_port + offset}"
        account = Account(
            username=username,
            display_name=display,
            password_hash=hash_password(DEMO_PASSWORD),
            role=role.value,
            must_change_password=must_change,
            extension=ext,
            sip_contact=contact,
            outlet_id=outlet,
        )
        if ext:
            # Made per install, never from the seed; only its digest is kept.
            account.set_sip_password(secrets.token_urlsafe(18), DEMO_SIP_REALM)
        session.add(account)
        session.flush()
        if ext and role == Role.SEAT:  # a supervisor's phone answers no queue
            session.add(QueueMembership(account_id=saved_id(account), queue_name=HOTLINE_QUEUE, penalty=0))
    session.flush()


# The interactive demo's browser-phone seat: it answers in the console page instead of a desk phone.
DEMO_BROWSER_SEAT = "1004"


def use_browser_phone(session: Session, extension: str = DEMO_BROWSER_SEAT) -> bool:
    """Give a demo seat the console's browser phone (and no fixed desk-phone contact)."""
    account = session.exec(select(Account).where(Account.extension == extension)).first()
    if account is None:
        return False
    account.phone = Phone.BROWSER
    account.sip_contact = ""
    if not account.sip_digest:
        account.set_sip_password(secrets.token_urlsafe(18), DEMO_SIP_REALM)
    session.add(account)
    session.commit()
    return True


def _demo_calls(session: Session, fixed: dict[str, Resident], now: datetime) -> list[PastOrder]:
    """Calls of the fixed residents, so the screen pop has history to show; the orders taken on
    them, for dispatch to make."""
    past: list[PastOrder] = []
    for k, h in enumerate(_HISTORY):
        resident = fixed.get(h.phone)
        if resident is None:
            continue
        hh, mm = (int(x) for x in h.hhmm.split(":"))
        started = (now - timedelta(days=h.days_ago)).replace(hour=hh, minute=mm, second=7 + k)
        wait = 4.0 + k * 1.3
        answered = bool(h.seat)
        talk = 95.0 + 31 * k if answered else None
        linkedid = f"{int(started.timestamp())}.{k + 1}"  # as Asterisk names a call
        session.add(
            CallRecord(
                linkedid=linkedid,
                caller=h.phone,
                caller_raw=_national(h.phone),
                did=HOTLINE_DID,
                source=h.source,
                order_12345=h.order_12345.format(date=f"{started:%Y%m%d}"),
                summary_12345=h.summary_12345,
                resident_id=resident.id,
                queue=HOTLINE_QUEUE,
                seat=h.seat,
                started_at=started,
                ended_at=started + timedelta(seconds=wait + (talk or 0)),
                wait_s=wait,
                ring_s=2.5 + k % 3 if answered else None,
                talk_s=talk,
                outcome="answered" if answered else "abandoned",
            )
        )
        if h.order is not None:
            taken_at = started + timedelta(seconds=wait + (talk or 0) - 20)
            past.append(PastOrder(h.order, resident, taken_at, linkedid))
    session.flush()
    return past


def _bulk_rows(maker: _ResidentMaker, start: int, stop: int) -> list[dict]:
    return [maker.row(bulk_phone(i)) for i in range(start, stop)]


def _batches(n: int, batch: int, start: int) -> Iterator[tuple[int, int]]:
    for lo in range(start, start + n, batch):
        yield lo, min(lo + batch, start + n)


def bulk_residents(
    engine: Engine,
    n: int,
    seed: int = 7,
    batch: int = 20000,
    *,
    start: int = 0,
    elderly_share: float = 0.18,
) -> None:
    """Insert ``n`` synthetic residents fast (Core inserts, one transaction per batch).

    Resident ``i`` (from ``start``) has the mobile number ``bulk_phone(i)``: unique, 199 numbers
    that the demo residents never use. They are spread over the communities and grids already
    in the database (none when there are none). Names and the other fields follow ``seed``;
    ``elderly_share`` of them are 60 or over.
    """
    if n <= 0:
        return
    with engine.connect() as conn:
        places = _places(conn)
    maker = _ResidentMaker(random.Random(seed), places, datetime.now(CHINA_TZ).year, elderly_share)
    table = table_of(Resident)
    for lo, hi in _batches(n, max(batch, 1), start):
        rows = _bulk_rows(maker, lo, hi)
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
