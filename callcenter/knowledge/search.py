"""The search index and the ranking, the same on both databases.

A published article's fields are segmented (``segment``) and stored as space-separated tokens in
``kb_doc``; the database's full-text index over them (SQLite FTS5 external content, or a
PostgreSQL tsvector built from the token arrays, never re-parsed) finds the candidates. The
final order is computed here, in Python, with BM25 over the fields (title and question forms
weighted most) from the stored tokens and the document frequencies in ``kb_term``, so SQLite and
PostgreSQL rank the same candidates the same way.

A query's words each become a group of alternatives: the word, its synonyms (``kb_synonym``),
its pinyin (homophone typos: 低包 finds 低保), and for letters typed, full pinyin and initials
(``dibao``, ``db``), as a prefix while the seat is still typing.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import bindparam, text
from sqlmodel import Session, col, delete, func, select

from callcenter.knowledge import segment
from callcenter.knowledge.models import Article, ArticleStatus, SearchDoc, Synonym, Term

FIELDS = ("title", "questions", "answer", "extra")
# Field weights and typical lengths (fixed, so both databases and every process agree).
WEIGHTS = {"title": 3.0, "questions": 2.5, "answer": 1.0, "extra": 1.5}
AVG_LEN = {"title": 6.0, "questions": 30.0, "answer": 60.0, "extra": 60.0}
K1 = 1.2
B = 0.75
CANDIDATES = 100  # the database's own ranking picks them; ours orders them
MAX_QUERY = 100  # characters of a query that are read
MAX_GROUPS = 12
COMMON = 200  # a word in more articles than this and 2 % of all is left out of the candidates' query


@dataclass(frozen=True, slots=True)
class Alt:
    term: str
    weight: float
    prefix: bool = False


@dataclass
class Query:
    groups: list[list[Alt]] = field(default_factory=list)

    def terms(self) -> list[Alt]:
        return [a for g in self.groups for a in g]


@dataclass(frozen=True, slots=True)
class Hit:
    article_id: int
    score: float


# --- indexing -------------------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def doc_tokens(article: Article) -> dict[str, list[str]]:
    title = segment.words(article.title)
    questions = segment.words(article.questions)
    keywords = segment.words(article.keywords.replace(",", " ").replace("，", " "))
    answer = segment.words(f"{article.spoken} {article.answer}")
    named = title + questions + keywords
    extra = segment.sounds(named) + segment.initial_tokens(named)
    # Keywords are the editors' own choice: weighted as question forms.
    return {"title": title, "questions": questions + keywords, "answer": answer, "extra": extra}


def _terms_of(doc: SearchDoc) -> set[str]:
    return {t for f in FIELDS for t in getattr(doc, f).split()}


def _bump(session: Session, counts: Counter[str], sign: int) -> None:
    if not counts:
        return
    terms = list(counts)
    have = {t.term: t for t in session.exec(select(Term).where(col(Term.term).in_(terms)))}
    for term, n in counts.items():
        row = have.get(term)
        if row is None:
            if sign > 0:
                session.add(Term(term=term, df=n))
        else:
            row.df = max(0, row.df + sign * n)
            session.add(row)


# The migration creates the same table; a schema made by ``create_all`` (some tests) gets it here.
FTS5_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(title, questions, answer, extra, "
    "content='kb_doc', content_rowid='article_id', tokenize='unicode61', prefix='4 5 6')"
)

_fts_ready: set[str] = set()


def _ensure_fts(session: Session) -> None:
    """The FTS5 table exists (made once per database and process)."""
    url = str(session.get_bind().engine.url)
    if url not in _fts_ready:
        session.execute(text(FTS5_TABLE))
        _fts_ready.add(url)


_PG_TSV = (
    "setweight(array_to_tsvector(string_to_array(title, ' ')), 'A') || "
    "setweight(array_to_tsvector(string_to_array(questions, ' ')), 'B') || "
    "setweight(array_to_tsvector(string_to_array(answer, ' ')), 'D') || "
    "setweight(array_to_tsvector(string_to_array(extra, ' ')), 'C')"
)


def unindex(session: Session, article_id: int) -> None:
    """Take an article out of search (it left the published state)."""
    doc = session.get(SearchDoc, article_id)
    if doc is None:
        return
    if _dialect(session) == "sqlite":
        session.execute(
            text(
                "INSERT INTO kb_fts(kb_fts, rowid, title, questions, answer, extra) "
                "VALUES('delete', :id, :title, :questions, :answer, :extra)"
            ),
            {"id": article_id, **{f: getattr(doc, f) for f in FIELDS}},
        )
    _bump(session, Counter(_terms_of(doc)), -1)
    session.delete(doc)
    session.flush()


def index(session: Session, article: Article) -> None:
    """Put a published article's current text into search (replacing what was there)."""
    assert article.id is not None
    unindex(session, article.id)
    _synonyms(session)  # the segmenter knows the synonym words before it cuts
    tokens = doc_tokens(article)
    doc = SearchDoc(
        article_id=article.id,
        category_id=article.category_id,
        **{f: " ".join(t[:64] for t in tokens[f]) for f in FIELDS},
    )
    session.add(doc)
    session.flush()
    _bump(session, Counter(_terms_of(doc)), +1)
    if _dialect(session) == "sqlite":
        _ensure_fts(session)
        session.execute(
            text(
                "INSERT INTO kb_fts(rowid, title, questions, answer, extra) "
                "VALUES(:id, :title, :questions, :answer, :extra)"
            ),
            {"id": article.id, **{f: getattr(doc, f) for f in FIELDS}},
        )
    else:
        session.execute(text(f"UPDATE kb_doc SET tsv = {_PG_TSV} WHERE article_id = :id"), {"id": article.id})
    _cache.clear()


def rebuild(session: Session) -> int:
    """Index every published article anew, in bulk (after an import, or to repair)."""
    _cache.clear()
    _synonyms(session)  # the segmenter knows the synonym words before it cuts
    session.exec(delete(SearchDoc))
    session.exec(delete(Term))
    counts: Counter[str] = Counter()
    rows = []
    published = select(Article).where(Article.status == ArticleStatus.PUBLISHED.value)
    for article in session.exec(published):
        tokens = doc_tokens(article)
        row = {f: " ".join(t[:64] for t in tokens[f]) for f in FIELDS}
        counts.update({t for f in FIELDS for t in row[f].split()})
        rows.append({"article_id": article.id, "category_id": article.category_id, **row})
    if rows:
        session.execute(SearchDoc.__table__.insert(), rows)  # type: ignore[attr-defined]
        session.execute(Term.__table__.insert(), [{"term": t, "df": n} for t, n in counts.items()])  # type: ignore[attr-defined]
    if _dialect(session) == "sqlite":
        _ensure_fts(session)
        session.execute(text("INSERT INTO kb_fts(kb_fts) VALUES('rebuild')"))
    else:
        session.execute(text(f"UPDATE kb_doc SET tsv = {_PG_TSV}"))
    session.flush()
    _cache.clear()
    return len(rows)


# --- queries --------------------------------------------------------------------------------

# Per process: the synonym groups and the count of indexed articles, refreshed every few seconds
# (an editor's new synonym reaches every web worker without a restart).
_cache: dict[str, object] = {}
_TTL = 5.0


def _synonyms(session: Session) -> dict[str, list[str]]:
    now = time.monotonic()
    cached = _cache.get("syn")
    if cached is not None and now - float(_cache["syn_at"]) < _TTL:  # type: ignore[arg-type]
        return cached  # type: ignore[return-value]
    groups: dict[str, list[str]] = {}
    words: list[str] = []
    for row in session.exec(select(Synonym)):
        members = [segment.normalise(w.strip()) for w in row.words.replace("，", ",").split(",") if w.strip()]
        words.extend(members)
        for w in members:
            groups.setdefault(w, []).extend(m for m in members if m != w)
    if words != _cache.get("syn_words"):
        segment.add_words(words)
        _cache["syn_words"] = words
    _cache["syn"] = groups
    _cache["syn_at"] = now
    return groups


def parse(session: Session, raw: str, typing: bool = False) -> Query:
    """The query's groups of alternatives. ``typing``: the last word may be unfinished."""
    raw = segment.normalise(raw)[:MAX_QUERY]
    synonyms = _synonyms(session)
    ws = segment.words(raw)
    q = Query()
    seen: set[str] = set()
    for i, w in enumerate(ws):
        if w in seen:
            continue
        seen.add(w)
        last = typing and i == len(ws) - 1 and raw.rstrip() == raw
        if w.isascii():
            if not w.isalpha():
                q.groups.append([Alt(w, 1.0, prefix=last)])
                continue
            q.groups.append(
                [
                    Alt(w, 1.0),
                    # Two letters are the start of too many syllables to look for all of them.
                    Alt("py" + w, 0.9, prefix=last and len(w) >= 3),
                    Alt("sx" + w, 0.8, prefix=last and len(w) <= 4),
                ]
            )
            continue
        # A part of a longer word of the query (十里 of 十里桃乡) counts less than the word.
        part = 0.3 if any(w != v and w in v for v in ws) else 1.0
        alts = [Alt(w, part)]
        for syn in synonyms.get(w, []):
            alts.extend(Alt(s, 0.9 * part) for s in segment.words(syn) if s != w)
        if len(w) > 1:
            alts.append(Alt("py" + segment.pinyin(w), 0.7 * part))
        q.groups.append(alts)
    # Homophone typos split a word into pieces jieba does not know (低包 → 低 包): the sound of
    # two neighbours put together is looked for too.
    plain = [w for w in segment.words(raw, keep_stopwords=True) if not w.isascii()]
    for a, b in zip(plain, plain[1:], strict=False):
        pair = a + b
        if 2 <= len(pair) <= 4 and (len(a) == 1 or len(b) == 1) and pair not in seen:
            seen.add(pair)
            q.groups.append([Alt("py" + segment.pinyin(pair), 0.6)])
    q.groups = q.groups[:MAX_GROUPS]
    return q


def _fts_query(alts: list[Alt]) -> str:
    return " OR ".join(f'"{a.term}"' + ("*" if a.prefix else "") for a in alts)


def _ts_query(alts: list[Alt]) -> str:
    return " | ".join(f"'{a.term}'" + (":*" if a.prefix else "") for a in alts)


def _candidates(session: Session, groups: list[list[Alt]], n: int, dfs: dict[str, int]) -> list[int]:
    alts = [a for g in groups for a in g]
    if _dialect(session) == "sqlite":
        _ensure_fts(session)
        sql = (
            "SELECT rowid FROM kb_fts WHERE kb_fts MATCH :q "
            "ORDER BY bm25(kb_fts, 3.0, 2.5, 1.0, 1.5), rowid LIMIT :n"
        )
        rows = session.execute(text(sql), {"q": _fts_query(alts), "n": CANDIDATES})
        return [int(r[0]) for r in rows]
    # ts_rank knows no word's rarity: alone it lets long articles full of common words crowd out
    # the one naming a rare place. Each word's rank is weighted by its IDF, as FTS5's bm25 does,
    # the best alternative of each group counted (the fields weighted D answer, C extra,
    # B questions, A title, in the proportions of WEIGHTS).
    params: dict[str, object] = {"q": _ts_query(alts), "n": CANDIDATES}
    parts = []
    for g in groups:
        exprs = []
        # A word's sound is in the same articles as the word: ranked by the word alone (a rank
        # less per row), by the sound when the group has nothing else (typed pinyin, typos).
        words = [a for a in g if not a.term.isascii()]
        for a in words or g:
            k = f"t{len(params)}"
            params[k] = f"'{a.term}'" + (":*" if a.prefix else "")
            factor = round(a.weight * _idf(n, 1 if a.prefix else max(1, dfs.get(a.term, 1))), 6)
            exprs.append(f"{factor} * ts_rank('{{0.333,0.5,0.833,1}}', tsv, to_tsquery('simple', :{k}), 1)")
        parts.append(exprs[0] if len(exprs) == 1 else f"GREATEST({', '.join(exprs)})")
    sql = (
        "SELECT article_id FROM kb_doc, to_tsquery('simple', :q) q WHERE tsv @@ q "
        f"ORDER BY ({' + '.join(parts)}) DESC, article_id LIMIT :n"
    )
    return [int(r[0]) for r in session.execute(text(sql), params)]


def _stats(session: Session, terms: list[str]) -> tuple[int, dict[str, int]]:
    now = time.monotonic()
    key = f"n:{session.get_bind().engine.url}"
    cached = _cache.get(key)
    if cached is None or now - cached[1] >= _TTL:  # type: ignore[index]
        cached = (session.exec(select(func.count()).select_from(SearchDoc)).one(), now)
        _cache[key] = cached
    n = cached[0]  # type: ignore[index]
    dfs = {t.term: t.df for t in session.exec(select(Term).where(col(Term.term).in_(terms)))}
    return int(n), dfs


def _idf(n: int, df: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _score(
    q: Query,
    doc: tuple[str, str, str, str],
    n: int,
    dfs: dict[str, int],
    prefix_df: dict[str, int],
    exact: set[str],
    prefixes: tuple[str, ...],
) -> float:
    """BM25 over the fields, the best alternative of each group counted."""
    tfs: dict[str, Counter[str]] = {}
    lens: dict[str, int] = {}
    for f, value in zip(FIELDS, doc, strict=True):
        tokens = value.split()
        lens[f] = len(tokens)
        c: Counter[str] = Counter()
        for t in tokens:
            if t in exact:
                c[t] += 1
            if prefixes and t.startswith(prefixes):
                for p in prefixes:
                    if t.startswith(p):
                        c["*" + p] += 1
        tfs[f] = c
    total = 0.0
    matched = 0
    for group in q.groups:
        best = 0.0
        for alt in group:
            key = "*" + alt.term if alt.prefix else alt.term
            df = prefix_df.get(alt.term, 1) if alt.prefix else dfs.get(alt.term, 0)
            s = 0.0
            for f in FIELDS:
                tf = tfs[f].get(key, 0)
                if tf:
                    norm = K1 * (1 - B + B * lens[f] / AVG_LEN[f])
                    s += WEIGHTS[f] * tf * (K1 + 1) / (tf + norm)
            if s:
                best = max(best, alt.weight * _idf(n, df) * s)
        if best:
            matched += 1
            total += best
    if not matched:
        return 0.0
    # Articles answering more of the question's words come first among equals.
    return round(total * math.sqrt(matched / len(q.groups)), 6)


_DOCS = text(
    "SELECT article_id, title, questions, answer, extra, category_id FROM kb_doc WHERE article_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def search(
    session: Session,
    raw: str,
    limit: int = 5,
    typing: bool = False,
    category_id: int | None = None,
) -> list[Hit]:
    """The best published articles for a question, best first (ties: the older article)."""
    q = parse(session, raw, typing=typing)
    alts = q.terms()
    if not alts:
        return []
    n, dfs = _stats(session, sorted({a.term for a in alts if not a.prefix}))
    # A word in most articles finds nothing by itself: left out of the candidates' query when
    # rarer words are there, still counted in the score.
    rare = [[a for a in g if a.prefix or dfs.get(a.term, 0) <= max(COMMON, n // 50)] for g in q.groups]
    rare = [g for g in rare if g]
    ids = _candidates(session, rare or q.groups, n, dfs)
    if not ids:
        return []
    docs = [(int(r[0]), (r[1], r[2], r[3], r[4]), r[5]) for r in session.execute(_DOCS, {"ids": ids})]
    prefix_df = {
        a.term: max(1, sum(1 for d in docs if any(t.startswith(a.term) for t in d[1][3].split())))
        for a in alts
        if a.prefix
    }
    exact = {a.term for a in alts if not a.prefix}
    prefixes = tuple(a.term for a in alts if a.prefix)
    hits = []
    for article_id, fields, doc_category in docs:
        s = _score(q, fields, n, dfs, prefix_df, exact, prefixes)
        if category_id is not None and doc_category == category_id:
            s *= 1.2
        if s > 0:
            hits.append(Hit(article_id, s))
    hits.sort(key=lambda h: (-h.score, h.article_id))
    return hits[:limit]


def suggest(
    session: Session, texts: list[str], category_ids: set[int] | None = None, limit: int = 5
) -> list[Hit]:
    """Articles for a ringing call, before anyone speaks: from what the caller chose in the voice
    menu (``category_ids``: its category and those under it) and what they called about recently
    (``texts``). The menu's categories come first: their articles the texts find, then their most
    used ones, then what the texts find elsewhere."""
    category_ids = category_ids or set()
    raw = " ".join(t.strip()[:40] for t in texts if t and t.strip())[:MAX_QUERY]
    hits = search(session, raw, limit=limit * 3) if raw else []
    if not category_ids:
        return hits[:limit]
    in_cats = {
        int(r[0])
        for r in session.execute(
            select(col(SearchDoc.article_id)).where(
                col(SearchDoc.article_id).in_([h.article_id for h in hits]),
                col(SearchDoc.category_id).in_(category_ids),
            )
        )
    }
    first = [h for h in hits if h.article_id in in_cats]
    have = {h.article_id for h in first}
    more = session.exec(
        select(Article.id)
        .join(SearchDoc, col(SearchDoc.article_id) == col(Article.id))
        .where(col(SearchDoc.category_id).in_(category_ids))
        .order_by(col(Article.uses).desc(), col(Article.id))
        .limit(limit)
    )
    first += [Hit(a, 0.0) for a in more if a is not None and a not in have]
    have |= {h.article_id for h in first}
    return (first + [h for h in hits if h.article_id not in have])[:limit]
