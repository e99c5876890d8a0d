"""Word segmentation for keyword search in Chinese and English.

Full-text engines split on spaces, and Chinese has none, so memories are stored with a
`search_text` of space-separated tokens: jieba words plus overlapping character pairs (bigrams),
which match even when jieba cuts the query differently from the memory ("王总" vs "王 总").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9a-z\u00c0-\u024f]+(?:['’][a-z]+)?")
_STOP_ZH = (
    "的 了 是 我 你 他 她 它 们 吗 呢 吧 啊 和 与 在 也 "
    "就 都 这 那 有 个 一 不 没 把 被 让 给 对 么"
)
_STOP_EN = (
    "a an the and or of to in on at for is are was were be been am i you he she it we they me my "
    "your our do does did have has had with this that what how when where which who whom will "
    "would can could should about from by as if then so but not no"
)
_STOP = frozenset(_STOP_ZH.split()) | frozenset(_STOP_EN.split())
_lock = threading.Lock()
_jieba_ready = False


def _cut(text: str) -> list[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _lock:
            if not _jieba_ready:
                jieba.setLogLevel(60)  # its dictionary-loading chatter goes to stderr otherwise
                jieba.initialize()
                _jieba_ready = True
    return list(jieba.cut_for_search(text))


def warm_up() -> None:
    """Load jieba's dictionary now (≈1 s) instead of on the first search."""
    _cut("预热")


def stem(word: str) -> str:
    """A light English stemmer (meetings → meeting, booked → book) so forms match each other."""
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suffix)] + keep
    return word


def tokens(text: str) -> list[str]:
    """Search tokens: lowercased stemmed words, jieba words and CJK bigrams, no stop words."""
    lowered = text.lower()
    out: list[str] = [stem(w) for w in _WORD.findall(lowered) if w not in _STOP and len(w) > 1]
    for run in _CJK_RUN.findall(lowered):
        out.extend(w for w in _cut(run) if w not in _STOP and w.strip())
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def search_text(text: str) -> str:
    """What is stored in `memories.search_text` for full-text indexing."""
    return " ".join(tokens(text))


_STOP_CHARS = frozenset(_STOP_ZH.replace(" ", ""))
_MAX_QUERY_TERMS = 16


@lru_cache(maxsize=2048)
def query_terms(text: str) -> tuple[str, ...]:
    """Distinct tokens of a query for an OR query, without the ones that only cost time.

    Single CJK characters and bigrams touching a function word ("我不", "的会") match a large
    share of all memories, so scoring them dominates full-text search on big stores while
    bigrams and words already carry their meaning.
    """
    terms = [
        t
        for t in _unique(tokens(text))
        if not (_CJK_RUN.fullmatch(t) and (len(t) == 1 or (len(t) == 2 and set(t) & _STOP_CHARS)))
    ]
    return tuple(terms[:_MAX_QUERY_TERMS])


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in items if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]
