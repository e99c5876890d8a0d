"""Hybrid recall: vector similarity + keyword search + time window + recency + importance.

Each signal ranks candidates; reciprocal-rank fusion (RRF) adds 1/(60 + rank) per signal, so no
signal's raw scale dominates. Per-kind quotas then make sure relevant rejected proposals and
open commitments are never crowded out: forgetting "the user said no to that hotel" is worse
than forgetting a fact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from memory.embeddings import Embedder, EmbeddingUnavailable
from memory.memories import MemoryRecord, MemoryStore
from memory.models import MemoryKind
from memory.types import utcnow
from memory.vectors import VectorIndex, VectorIndexError
from memory.when import window

log = logging.getLogger(__name__)

_RRF_K = 60
_WEIGHTS = {"vector": 1.0, "keyword": 1.0, "time": 1.2, "recency": 0.2, "importance": 0.2}
_QUOTAS = {MemoryKind.REJECTED_PROPOSAL: 2, MemoryKind.COMMITMENT: 2}
"""At least this many of each kind among the results, when that many are relevant."""
_MIN_SIMILARITY = 0.15
"""Cosine below this is noise for the default model (USE scores related texts ~0.25–0.55)."""
_QUOTA_DEPTH = 15
"""A memory counts as relevant for a quota when a retrieval signal ranked it this high."""


@dataclass(frozen=True, kw_only=True)
class Hit:
    """A recalled memory with its fused score and the rank each signal gave it."""

    memory: MemoryRecord
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


class Recall:
    """Searches one user's memories."""

    def __init__(
        self, store: MemoryStore, *, index: VectorIndex | None, embedder: Embedder | None
    ) -> None:
        self._store = store
        self._index = index
        self._embedder = embedder
        self.degraded: str | None = None
        """Why vector search is off right now (None when it works)."""
        self._min_similarity = _MIN_SIMILARITY

    async def search(
        self,
        user_id: int,
        query: str,
        *,
        limit: int = 10,
        now: datetime | None = None,
        include_history: bool = False,
        candidates: int = 50,
    ) -> list[Hit]:
        """The user's memories most relevant to `query`, best first."""
        now = now or utcnow()
        rankings: dict[str, list[int]] = {}
        keyword = await self._store.keyword_search(
            user_id, query, limit=candidates, include_history=include_history
        )
        rankings["keyword"] = [i for i, _ in keyword]
        rankings["vector"] = await self._vector(user_id, query, candidates, include_history)
        span = window(query, now)
        if span is not None:
            in_span = await self._store.in_window(
                user_id, span[0], span[1], limit=candidates, include_history=True
            )
            # Inside the window, what the other signals liked comes first.
            signal_rank = _best_ranks(rankings)
            rankings["time"] = sorted(in_span, key=lambda i: signal_rank.get(i, 10**6))
        pool = {i for ids in rankings.values() for i in ids}
        records = await self._store.by_ids(user_id, list(pool))
        if not include_history and span is None:
            records = {i: r for i, r in records.items() if r.current}
        rankings["recency"] = sorted(records, key=lambda i: records[i].valid_from, reverse=True)
        rankings["importance"] = sorted(records, key=lambda i: -records[i].importance)
        scores: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for signal, ids in rankings.items():
            weight = _WEIGHTS[signal]
            for rank, memory_id in enumerate(i for i in ids if i in records):
                scores[memory_id] = scores.get(memory_id, 0.0) + weight / (_RRF_K + rank + 1)
                ranks.setdefault(memory_id, {})[signal] = rank + 1
        # A memory only recency/importance liked is not a match.
        matched = {i for i in scores if {"vector", "keyword", "time"} & set(ranks.get(i, {}))}
        ordered = sorted(matched, key=lambda i: (-scores[i], i))
        chosen = _apply_quotas(ordered, records, ranks, limit)
        return [Hit(memory=records[i], score=scores[i], ranks=ranks[i]) for i in chosen]

    async def _vector(self, user_id: int, query: str, k: int, include_history: bool) -> list[int]:
        if self._index is None or self._embedder is None or not self._index.is_open:
            return []  # no index yet (still opening at start): keywords and dates only
        try:
            [vector] = await self._embedder.embed_queries([query])
            found = await self._index.query(user_id, vector, k=k)
        except (EmbeddingUnavailable, VectorIndexError) as exc:
            if self.degraded != str(exc):
                log.warning("vector recall is off, using keywords only: %s", exc)
            self.degraded = str(exc)
            return []
        self.degraded = None
        return [i for i, similarity in found if similarity >= self._min_similarity]


def _best_ranks(rankings: dict[str, list[int]]) -> dict[int, int]:
    best: dict[int, int] = {}
    for ids in rankings.values():
        for rank, memory_id in enumerate(ids):
            best[memory_id] = min(best.get(memory_id, rank), rank)
    return best


def _apply_quotas(
    ordered: Sequence[int],
    records: dict[int, MemoryRecord],
    ranks: dict[int, dict[str, int]],
    limit: int,
) -> list[int]:
    chosen = list(ordered[:limit])
    for kind, quota in _QUOTAS.items():
        have = sum(1 for i in chosen if records[i].kind == kind)
        extra = [
            i
            for i in ordered[limit:]
            if records[i].kind == kind
            and min((r for s, r in ranks[i].items() if s in ("vector", "keyword")), default=999)
            <= _QUOTA_DEPTH
        ]
        for memory_id in extra[: max(0, quota - have)]:
            # Replace the weakest result that is not itself protected by a quota.
            for pos in range(len(chosen) - 1, -1, -1):
                if records[chosen[pos]].kind not in _QUOTAS:
                    chosen[pos] = memory_id
                    break
    return sorted(chosen, key=lambda i: ordered.index(i))
