"""The labelled questions (``questions_*.tsv``) and how search is scored on them: recall@5 (an
answering article among the first five) and the mean reciprocal rank. The tests and
``benchmarks/bench_kb.py`` share it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlmodel import Session

from callcenter.knowledge import demo, search
from dispatch.categories import seed_categories
from hotline.demo import DISTRICT

HERE = Path(__file__).resolve().parent
TODAY = date(2026, 12, 5)


@dataclass(frozen=True)
class Labelled:
    question: str
    keys: tuple[str, ...]

    def answers(self, ids_by_key: dict[str, int]) -> set[int]:
        out: set[int] = set()
        for key in self.keys:
            if key.endswith("*"):
                out |= {i for k, i in ids_by_key.items() if k.startswith(key[:-1])}
            else:
                out.add(ids_by_key[key])
        return out


def questions() -> list[Labelled]:
    out = []
    for path in sorted(HERE.glob("questions_*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                q, keys = line.split("\t")
                out.append(Labelled(q.strip(), tuple(k.strip() for k in keys.split(","))))
    return out


def places() -> list[tuple[str, list[tuple[str, tuple[str, ...]]], tuple[str, ...]]]:
    return [(name, list(urban), villages) for name, _code, urban, villages in DISTRICT]


def load_demo(session: Session) -> dict[str, int]:
    """The category tree and the demo articles; their ids by key."""
    cats = seed_categories(session)
    ids = demo.load(session, places(), {code: c.id for code, c in cats.items() if c.id is not None}, TODAY)
    session.commit()
    return ids


@dataclass
class Score:
    recall_at_5: float
    mrr: float
    n: int
    misses: list[tuple[str, list[int]]]
    ranked: dict[str, list[int]]


def evaluate(session: Session, ids_by_key: dict[str, int], typing: bool = False) -> Score:
    found = 0
    rr = 0.0
    misses = []
    ranked = {}
    qs = questions()
    for lq in qs:
        hits = [h.article_id for h in search.search(session, lq.question, limit=10, typing=typing)]
        ranked[lq.question] = hits
        good = lq.answers(ids_by_key)
        rank = next((i for i, h in enumerate(hits) if h in good), None)
        if rank is not None and rank < 5:
            found += 1
        else:
            misses.append((lq.question, hits[:5]))
        if rank is not None:
            rr += 1.0 / (rank + 1)
    return Score(found / len(qs), rr / len(qs), len(qs), misses, ranked)
