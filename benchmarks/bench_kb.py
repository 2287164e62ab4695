"""The knowledge base's search: quality on the labelled questions and speed at 100,000 articles.

- kb_recall_at_5, kb_mrr: the labelled questions of tests/callcenter/knowledge/ (written the way
  residents ask, each with the demo articles that answer it) against the demo articles;
- kb_search_p95_ms: the same questions, and the prefixes a seat types on the way to them, over
  BENCH_KB_ARTICLES published articles (default 100,000: the demo's plus generated ones built
  from the district's places, matters and answer sentences) on the embedded SQLite;
- kb_search_p95_ms_postgres: the same on PostgreSQL (the throwaway local server of
  tests/conftest.py; null without one);
- kb_suggest_p95_ms: the suggestions for a ringing call (the voice menu's category and the
  caller's recent orders) over the same articles, measured at the function the pop's request
  calls (``search.suggest``), on SQLite.

Prints one JSON line ``{"bench": "kb", ...}`` with each figure's sample size.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import CACHE_ROOT, log, percentile  # noqa: E402
from callcenter.config import Settings, set_settings  # noqa: E402
from callcenter.database import get_engine, migrate, session_scope  # noqa: E402
from callcenter.knowledge import search  # noqa: E402
from callcenter.knowledge.models import Article  # noqa: E402
from tests.callcenter.knowledge import labelled  # noqa: E402

ARTICLES = int(os.environ.get("BENCH_KB_ARTICLES", "100000"))
CACHE = CACHE_ROOT / f"kb-{ARTICLES}"

MATTERS = (
    "低保 高龄补贴 老年证 居住证 残疾证 医保 社保 养老保险 失业金 公租房 廉租房 "
    "户口 身份证 出生证明 生育登记 "
    "育儿补贴 入学 助学金 健康证 暖气 采暖费 燃气 停水 停电 物业费 维修资金 加装电梯 楼道灯 垃圾分类 "
    "大件垃圾 占道经营 噪音 养犬登记 流浪狗 电动车 充电桩 消防通道 法律援助 人民调解 欠薪 劳动仲裁 "
    "创业贷款 就业登记 技能培训 家庭医生 疫苗 慢特病 异地就医 陪诊 助餐 日间照料 适老化改造 退役军人 "
    "丧葬补贴 志愿者 托育 临时救助 医疗救助 特困供养 水费 电费 网格员 开具证明 无犯罪记录证明"
).split()
ACTIONS = "申请 办理 咨询 查询 补办 变更 注销 领取 缴纳 投诉 报修 预约 审核 认定 续期".split()
SENTENCES = (
    "请携带本人身份证和户口簿原件及复印件",
    "到户籍所在地街道便民服务中心窗口办理",
    "社区工作人员将在五个工作日内入户核查",
    "审核结果在社区公示栏公示七天",
    "对结果有异议的可以向区级主管部门申请复核",
    "行动不便的老年人可预约上门服务",
    "也可以通过甘肃政务服务网在网上申请",
    "办理时限为十个工作日",
    "不收取任何费用",
    "具体标准以当年公布的文件为准",
    "委托他人办理的需提供委托书和代办人身份证",
    "材料不全的窗口一次性告知需补正的内容",
)


def places() -> list[str]:
    out: list[str] = []
    for district, urban, villages in labelled.places():
        out.append(district)
        out.extend(name for name, _ in urban)
        out.extend(villages)
    return out


def filler(n: int, start_id: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    where = places()
    rows = []
    for i in range(n):
        place, matter, action = rng.choice(where), rng.choice(MATTERS), rng.choice(ACTIONS)
        spoken = "，".join(rng.sample(SENTENCES, 3)) + "。"
        rows.append(
            dict(
                id=start_id + i,
                title=f"{place}{matter}{action}指南",
                questions=f"{place}{matter}怎么{action}\n{matter}{action}需要什么材料",
                spoken=spoken,
                answer=spoken + "，".join(rng.sample(SENTENCES, 4)) + "。",
                keywords=f"{matter},{place}",
                category_id=None,
                owner_office=f"{place}办事处",
                owner="admin",
                source_doc="",
                source_number=f"GEN-{i}",
                valid_from=None,
                valid_until=None,
                attachments=[],
                status="published",
                version=1,
                demo=True,
                created_by="admin",
                edited_by="admin",
                reviewed_by="admin",
                created_at=labelled_now(),
                updated_at=labelled_now(),
                published_at=labelled_now(),
                uses=0,
            )
        )
    return rows


def labelled_now():
    from datetime import UTC, datetime

    return datetime(2026, 12, 5, tzinfo=UTC)


def build(settings: Settings) -> dict[str, int]:
    """The demo articles and the generated ones, indexed."""
    migrate(settings)
    with session_scope(settings) as s:
        ids = labelled.load_demo(s)
        extra = ARTICLES - len(ids)
        if extra > 0:
            t0 = time.perf_counter()
            top = max(ids.values())
            rows = filler(extra, top + 1)
            for i in range(0, len(rows), 5000):
                s.execute(Article.__table__.insert(), rows[i : i + 5000])  # type: ignore[attr-defined]
            s.flush()
            log(f"{extra} generated articles inserted in {time.perf_counter() - t0:.0f} s")
            t0 = time.perf_counter()
            indexed = search.rebuild(s)
            log(f"{indexed} articles segmented and indexed in {time.perf_counter() - t0:.0f} s")
        s.commit()
    return ids


def queries() -> list[tuple[str, bool]]:
    """Every labelled question whole, and the prefixes of its letters-typed forms as typed."""
    out: list[tuple[str, bool]] = []
    for lq in labelled.questions():
        out.append((lq.question, False))
        if lq.question.isascii():
            out.extend((lq.question[:k], True) for k in range(2, len(lq.question)))
        else:
            out.append((lq.question[: max(2, len(lq.question) // 2)], True))
    return out


def latencies(settings: Settings) -> list[float]:
    qs = queries()
    out: list[float] = []
    with session_scope(settings) as s:
        for q, typing in qs[:20]:  # warm: the segmenter's dictionary, the pages of the index
            search.search(s, q, typing=typing)
        for q, typing in qs:
            t0 = time.perf_counter()
            search.search(s, q, typing=typing)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def suggest_latencies(settings: Settings) -> list[float]:
    cases = [
        (["养老服务"], set()),
        (["政策咨询", "低保复核材料"], set()),
        (["水电维修", "暖气不热", "楼道灯坏了"], set()),
        (["投诉", "噪音扰民"], set()),
        ([""], set()),
    ]
    out: list[float] = []
    with session_scope(settings) as s:
        for _ in range(40):
            for texts, cats in cases:
                t0 = time.perf_counter()
                search.suggest(s, texts, cats)
                out.append((time.perf_counter() - t0) * 1000)
    return out


def postgres_p95() -> tuple[float | None, int]:
    from tests.conftest import postgres_url

    gen = postgres_url._get_wrapped_function()()
    try:
        url = next(gen)
    except BaseException as exc:  # pytest's skip outside pytest: no PostgreSQL server here
        log(f"PostgreSQL not measured: {exc}")
        return None, 0
    try:
        pg = set_settings(Settings(data_dir=CACHE / "pg", database_url=url, _env_file=None))
        t0 = time.perf_counter()
        build(pg)
        log(f"PostgreSQL built in {time.perf_counter() - t0:.0f} s")
        lat = latencies(pg)
        get_engine(pg).dispose()
        return round(percentile(lat, 95), 1), len(lat)
    finally:
        next(gen, None)


def main() -> None:
    import shutil

    shutil.rmtree(CACHE, ignore_errors=True)
    settings = set_settings(Settings(data_dir=CACHE / "sqlite", _env_file=None))
    t0 = time.perf_counter()
    ids = build(settings)
    log(f"SQLite built in {time.perf_counter() - t0:.0f} s")
    result: dict[str, object] = {"bench": "kb", "articles": ARTICLES}
    # Quality on the demo articles alone (a fresh database), as the tests measure it.
    small = set_settings(Settings(data_dir=CACHE / "labelled", _env_file=None))
    migrate(small)
    with session_scope(small) as s:
        score = labelled.evaluate(s, labelled.load_demo(s))
    result["kb_recall_at_5"] = round(score.recall_at_5, 4)
    result["kb_mrr"] = round(score.mrr, 4)
    result["kb_labelled_questions"] = score.n
    with session_scope(settings) as s:
        big = labelled.evaluate(s, ids)
    result["kb_recall_at_5_among_100k"] = round(big.recall_at_5, 4)
    lat = latencies(settings)
    result["kb_search_p95_ms"] = round(percentile(lat, 95), 1)
    result["kb_search_p50_ms"] = round(percentile(lat, 50), 1)
    result["kb_search_samples"] = len(lat)
    sug = suggest_latencies(settings)
    result["kb_suggest_p95_ms"] = round(percentile(sug, 95), 1)
    result["kb_suggest_samples"] = len(sug)
    pg95, pgn = postgres_p95()
    result["kb_search_p95_ms_postgres"] = pg95
    result["kb_search_samples_postgres"] = pgn
    result["measured_on"] = str(date.today())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
