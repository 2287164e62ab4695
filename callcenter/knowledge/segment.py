"""Chinese text to search tokens: jieba's search-mode segmentation with the district's own words
(its user dictionary: sub-districts, communities, villages, programmes, policy terms), and the
toneless pinyin and initials of each word, so ``dibao``, ``db`` and a homophone typo (低包) find
低保. The same tokens are indexed and queried, whatever the database."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import jieba
from pypinyin import Style, lazy_pinyin

USER_DICT = Path(__file__).with_name("userdict.txt")
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None

# Words that carry no matter in a resident's question; dropped from queries and the index alike.
STOPWORDS: frozenset[str] = frozenset(
    """的 了 吗 呢 吧 啊 呀 么 嘛 我 你 他 她 它 我们 你们 他们 是 在 有
    和 与 及 或 就 都 也 还 要 想 请问 请 问 问下 一下 下 这 那 这个
    那个 哪个 哪 哪里 哪儿 什么 怎么 怎么样 怎样 如何 多少 几 能 能不能 可以
    可不可以 会 该 应该 需要 得 去 到 给 让 把 被 对 从 为 为了 个 上
    里 中 人 家 呗 咋 咋办 啥 谁 没 没有 不 有没有 是不是 一 些 一些 现在
    今年 那么 这么 帮 帮忙 知道 告诉 说 想问 咨询 了解 办 我家 我妈 我爸
    老人家 您好 你好 谢谢""".split()
)

_WORD = re.compile(r"[0-9a-z]+|[\u3400-\u9fff]+")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "callcenter"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_uid == os.getuid() and os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="callcenter-jieba-"))  # owner-only, used for this process


def _load() -> jieba.Tokenizer:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            logging.getLogger("jieba").setLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            # jieba caches its parsed dictionary in the shared /tmp by default, where another user's
            # file can block the write or be read in place of ours: keep it in a private directory.
            tok.tmp_dir = str(_cache_dir())
            tok.initialize()
            for line in USER_DICT.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if parts and not line.startswith("#"):
                    tok.add_word(parts[0], int(parts[1]) if len(parts) > 1 else None)
            _tokenizer = tok
    return _tokenizer


def warm() -> None:
    """Load the dictionary now (a process that will search calls it at start)."""
    words("低保")


def add_words(words: list[str]) -> None:
    """Teach the segmenter more whole words (the synonyms editors add)."""
    tok = _load()
    for w in words:
        if 1 < len(w) <= 16:
            tok.add_word(w, 2000)
    _cut.cache_clear()


def normalise(text: str) -> str:
    """Full-width to half-width, lower case: what residents and seats type varies in both."""
    return unicodedata.normalize("NFKC", text).lower()


@lru_cache(maxsize=20000)
def _cut(chunk: str) -> tuple[str, ...]:
    return tuple(w for w in _load().cut_for_search(chunk, HMM=False) if w.strip())


def words(text: str, keep_stopwords: bool = False) -> list[str]:
    """The text's words: jieba's search mode for Chinese runs (long words and their parts),
    runs of letters and digits as they are."""
    out: list[str] = []
    for m in _WORD.finditer(normalise(text)):
        chunk = m.group()
        if chunk.isascii():
            out.append(chunk)
        else:
            out.extend(_cut(chunk))
    return out if keep_stopwords else [w for w in out if w not in STOPWORDS]


@lru_cache(maxsize=50000)
def pinyin(word: str) -> str:
    """Toneless pinyin of a Chinese word (低保 → dibao); empty for other text."""
    if word.isascii():
        return ""
    return "".join(lazy_pinyin(word, errors="ignore"))


@lru_cache(maxsize=50000)
def initials(word: str) -> str:
    """The first letters of its syllables (低保 → db)."""
    if word.isascii():
        return ""
    return "".join(p[:1] for p in lazy_pinyin(word, style=Style.FIRST_LETTER, errors="ignore"))


def sounds(ws: list[str]) -> list[str]:
    """Pinyin tokens of words of two characters or more, marked ``py`` so they never clash with a
    typed letter word; homophones share them (低保 and 低包 are both ``pydibao``)."""
    return [f"py{pinyin(w)}" for w in ws if len(w) > 1 and pinyin(w)]


def initial_tokens(ws: list[str]) -> list[str]:
    return [f"sx{initials(w)}" for w in ws if len(w) > 1 and initials(w)]
