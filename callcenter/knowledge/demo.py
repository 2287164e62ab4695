"""The demo's knowledge base: the topics of ``demo_topics`` and the district's service points
(every sub-district office's service centre and every community's or village's centre, its grid
workers, its meal point and health station), published and marked ``demo``, with the synonym
groups seats rely on. ``hotline/demo.py`` hands in the district's places and the category ids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlmodel import Session, col, select

from callcenter.knowledge import search, service
from callcenter.knowledge.demo_topics import HOURS, TOPICS
from callcenter.knowledge.models import Article, ArticleStatus, Synonym

SYNONYMS: tuple[str, ...] = (
    "低保,最低生活保障,低保金",
    "老年证,老年人优待证,老年优待证,优待证",
    "廉租房,公租房,公共租赁住房,保障房",
    "医保,医疗保险,城乡居民医保",
    "社保,社会保险",
    "暖气,供暖,采暖",
    "暖气费,采暖费",
    "煤气,燃气,天然气",
    "残疾证,残疾人证",
    "准生证,生育登记",
    "失业金,失业保险金",
    "欠薪,拖欠工资,工资拖欠,讨薪",
    "电动车,电动自行车,电瓶车",
    "五保,特困供养,特困人员",
    "托老,日间照料",
    "流浪狗,流浪犬",
    "狗,犬,犬只",
    "户口,户籍",
    "高龄补贴,高龄津贴",
    "办事处,街道办,便民服务中心",
    "居委会,党群服务中心",
    "养老金,退休金,退休工资",
    "维修基金,维修资金",
    "疫苗,预防接种",
    "上学,入学",
    "吃饭,助餐,就餐,老年餐桌",
    "补贴,补助,津贴",
    "网格员,网格长",
    "上班,办公时间,几点",
    "在哪,地址,位置",
    "老人,老年人",
    "小孩,孩子,儿童,娃娃,娃",
    "无儿无女,没有子女,没儿没女",
    "没人养,无人赡养,无法定赡养人",
)

DEMO_OWNER = "admin"
KEY_PREFIX = "DEMO-"  # the demo articles' source number carries their key (the labelled tests use it)


def _articles(places: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]], Sequence[str]]]) -> list[dict]:
    rows: list[dict] = []
    for key, cat, title, questions, spoken, keywords, office in TOPICS:
        rows.append(
            dict(
                key=key,
                category=cat,
                title=title,
                questions=questions.replace("|", "\n"),
                spoken=spoken,
                answer=f"{spoken}\n办理中遇到问题可拨打安宁区社区服务热线96345咨询，或到所在街道便民服务中心窗口办理。",
                keywords=keywords,
                owner_office=office,
                source_doc=f"{office}办事指南",
            )
        )
    for n, (district, urban, villages) in enumerate(places):
        first_street = urban[0][1][0] if urban else "北滨河西路"
        rows.append(
            dict(
                key=f"centre-{district}",
                category="AFFAIRS",
                title=f"{district}便民服务中心地址和办公时间",
                questions=f"{district}便民服务中心在哪\n{district}办事处几点上班\n去{district}办事在哪里",
                spoken=f"{district}便民服务中心在{first_street}{100 + n * 37}号一楼，办公时间{HOURS}。",
                answer=f"{district}便民服务中心集中办理低保、养老、医保、就业、残联、计生等事项。",
                keywords=f"{district},便民服务中心,办事处,街道办",
                owner_office=f"{district}办事处",
            )
        )
        rows.append(
            dict(
                key=f"meal-{district}",
                category="ELDER-MEAL",
                title=f"{district}老年助餐点",
                questions=f"{district}老人在哪吃饭\n{district}老年餐桌在哪",
                spoken=f"{district}老年助餐点设在{first_street}社区日间照料中心，每天11:30-13:00供应午餐，60岁以上老人凭老年证优惠。",
                answer="高龄、失能老人可通过热线预约送餐上门。",
                keywords=f"{district},助餐,老年餐桌",
                owner_office=f"{district}办事处",
            )
        )
        rows.append(
            dict(
                key=f"clinic-{district}",
                category="HEALTH-ASK",
                title=f"{district}社区卫生服务站",
                questions=f"{district}社区医院在哪\n{district}卫生服务站几点开门",
                spoken=f"{district}社区卫生服务站在{first_street}，每天8:00-18:00门诊，提供常见病诊疗、预防接种和家庭医生签约。",
                answer="慢病老人可预约上门巡诊。",
                keywords=f"{district},卫生服务站,社区医院,门诊",
                owner_office="安宁区卫健局",
            )
        )
        places_here = [(name, streets[0]) for name, streets in urban] + [
            (v, f"{v}村委会院内") for v in villages
        ]
        for i, (name, where) in enumerate(places_here):
            centre = "党群服务中心" if name.endswith("社区") else "村委会"
            rows.append(
                dict(
                    key=f"community-{name}",
                    category="AFFAIRS",
                    title=f"{name}{centre}地址和办公时间",
                    questions=f"{name}{centre}在哪\n{name}几点上班\n{name}的电话",
                    spoken=f"{name}{centre}在{where}{20 + i * 3}号，属{district}，办公时间{HOURS}。",
                    answer=f"{name}办理居住证明、老年证、高龄补贴、低保初审等事项，也可通过96345转接。",
                    keywords=f"{name},{district},{centre}",
                    owner_office=f"{district}办事处",
                )
            )
            rows.append(
                dict(
                    key=f"grid-{name}",
                    category="AFFAIRS",
                    title=f"{name}网格员联系方式",
                    questions=f"{name}的网格员是谁\n怎么联系{name}网格员",
                    spoken=f"{name}划分为若干网格，每个网格有专职网格员，可到{name}{centre}查询本楼栋网格员，或由热线转接。",
                    answer="网格员负责入户走访、矛盾排查、政策宣传和民生诉求收集。",
                    keywords=f"{name},网格员,网格",
                    owner_office=f"{district}办事处",
                )
            )
    return rows


def load(
    session: Session,
    places: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]], Sequence[str]]],
    category_ids: dict[str, int],
    today: date,
) -> dict[str, int]:
    """The demo articles, published (idempotent: keys already there are kept); their ids by key."""
    have = {
        a.source_number.removeprefix(KEY_PREFIX): a.id
        for a in session.exec(select(Article).where(col(Article.source_number).startswith(KEY_PREFIX)))
        if a.id is not None
    }
    if not session.exec(select(Synonym)).first():
        for words in SYNONYMS:
            session.add(Synonym(words=words))
    rows = [r for r in _articles(places) if r["key"] not in have]
    until = date(today.year + 1, 12, 31)
    for row in rows:
        key = row.pop("key")
        category = row.pop("category")
        article = Article(
            **row,
            category_id=category_ids.get(category),
            source_number=f"{KEY_PREFIX}{key}"[:64],
            owner=DEMO_OWNER,
            valid_from=date(today.year, 1, 1),
            valid_until=until,
            status=ArticleStatus.PUBLISHED.value,
            demo=True,
            created_by=DEMO_OWNER,
            edited_by=DEMO_OWNER,
            reviewed_by=DEMO_OWNER,
        )
        session.add(article)
        session.flush()
        assert article.id is not None
        have[key] = article.id
        service.record_version(session, article, "import", DEMO_OWNER)
    search.rebuild(session)
    return have
