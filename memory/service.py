"""Memories with their vectors kept in step: every write goes to the database first, then the
index; an index write that fails is repaired later from the database (the source of truth)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from memory.db import Database
from memory.embeddings import Embedder, EmbeddingUnavailable, Vector
from memory.memories import MemoryRecord, MemoryStore, NewMemory, clean_content
from memory.recall import Hit, Recall
from memory.reflections import Applied
from memory.vectors import VectorIndex, VectorIndexError

log = logging.getLogger(__name__)

_BATCH = 256


class MemoryService:
    """The memory API the agent, tools and CLI use."""

    def __init__(
        self, db: Database, *, index: VectorIndex | None, embedder: Embedder | None
    ) -> None:
        self.store = MemoryStore(db)
        self.index = index
        self.embedder = embedder
        self.recall = Recall(self.store, index=index, embedder=embedder)
        self.stale = False
        """True when some write did not reach the index; `repair()` fixes it."""
        self._empty: set[int] = set()
        """Users known to have no memories: their recall costs nothing (no embedding, no index)."""
        self._counted: set[int] = set()

    async def start(self) -> None:
        """Open the index and repair it if it is missing, built by another model, or stale."""
        if self.index is None or self.embedder is None:
            return
        try:
            fresh = await self.index.open(embedder=self.embedder.name)
        except VectorIndexError as exc:
            log.warning("vector index unavailable (%s); keyword recall only for now", exc)
            self.stale = True
            return
        if fresh and await self.store.count():
            log.info("vector index is empty or was built by another model: rebuilding")
            await self.reindex()
        else:
            await self.repair()

    async def close(self) -> None:
        """Release the index and embedder threads."""
        for resource in (self.index, self.embedder):
            close = getattr(resource, "close", None)
            if callable(close):
                close()
            aclose = getattr(resource, "aclose", None)
            if callable(aclose):
                await aclose()

    async def search(self, user_id: int, query: str, **options: object) -> list[Hit]:
        """Hybrid recall (see `memory.recall`)."""
        if user_id not in self._counted:
            if await self.store.count(user_id) == 0:
                self._empty.add(user_id)
            self._counted.add(user_id)
        if user_id in self._empty:
            return []
        return await self.recall.search(user_id, query, **options)  # type: ignore[arg-type]

    def _has_memories(self, user_id: int) -> None:
        self._empty.discard(user_id)

    async def remember(self, user_id: int, new: NewMemory) -> MemoryRecord:
        """Store one memory and index it."""
        record = await self.store.add(user_id, new)
        self._has_memories(user_id)
        await self._index([record])
        return record

    async def supersede(self, user_id: int, old_id: int, new: NewMemory) -> MemoryRecord | None:
        """Replace an outdated memory; the old one stays as history, out of normal recall."""
        record = await self.store.supersede(user_id, old_id, new)
        if record is None:
            return None
        self._has_memories(user_id)
        # The old vector stays: recall drops superseded memories unless history is asked for.
        await self._index([record])
        return record

    async def update(self, user_id: int, memory_id: int, **changes: object) -> MemoryRecord | None:
        """Correct a memory (content, kind, importance) and re-index it."""
        record = await self.store.update(user_id, memory_id, **changes)  # type: ignore[arg-type]
        if record is not None and "content" in changes:
            await self._index([record])
        return record

    async def forget(self, user_id: int, memory_id: int) -> bool:
        """Delete a memory from the database and the index; False if the user has no such one."""
        if not await self.store.delete(user_id, memory_id):
            return False
        self._counted.discard(user_id)  # recount: it may have been the last one
        if self.index is not None:
            try:
                await self.index.delete(user_id, [memory_id])
            except VectorIndexError as exc:
                # The database no longer has it, so recall cannot return it; repair cleans up.
                self._stale(exc)
        return True

    async def import_many(self, user_id: int, items: Sequence[NewMemory]) -> tuple[int, int]:
        """Store and index in batches; idempotent on `external_id`. Returns (added, skipped).

        Pipelined: while a batch is written to the database and embedded (two threads), the
        previous batch is written to the index (a third).
        """
        added = 0
        upserting: asyncio.Task[None] | None = None
        for start in range(0, len(items), _BATCH):
            chunk = items[start : start + _BATCH]
            stored, vectors = await asyncio.gather(
                self.store.add_many(user_id, chunk), self._embed([i.content for i in chunk])
            )
            pairs = (
                [(r, v) for r, v in zip(stored, vectors, strict=True) if r is not None]
                if vectors is not None
                else []
            )
            added += sum(1 for r in stored if r is not None)
            self._has_memories(user_id)
            if upserting is not None:
                await upserting
            if pairs and self.index is not None:
                upserting = asyncio.create_task(self._upsert(pairs))
        if upserting is not None:
            await upserting
        return added, len(items) - added

    async def _embed(self, texts: Sequence[str]) -> list[Vector] | None:
        if self.embedder is None or self.index is None:
            return None
        try:
            return await self.embedder.embed_passages([clean_content(t) for t in texts])
        except EmbeddingUnavailable as exc:
            self._stale(exc)
            return None

    async def _upsert(self, pairs: list[tuple[MemoryRecord, Vector]]) -> None:
        assert self.index is not None
        try:
            await self.index.upsert(pairs)
        except VectorIndexError as exc:
            self._stale(exc)

    async def reflect_index(self, applied: Applied) -> None:
        """Bring the index in line with what an extraction changed in the database."""
        if applied.upserted:
            self._has_memories(applied.user_id)
        if applied.deleted:
            self._counted.discard(applied.user_id)
        await self._index(applied.upserted)
        if self.index is None or not applied.deleted:
            return
        try:
            await self.index.delete(applied.user_id, applied.deleted)
        except VectorIndexError as exc:
            self._stale(exc)

    async def reindex(self) -> int:
        """Rebuild the whole index from the database; returns how many vectors were written."""
        if self.index is None or self.embedder is None:
            return 0
        await self.index.open(embedder=self.embedder.name)
        for user_id, stale in (await self.index.ids()).items():
            await self.index.delete(user_id, sorted(stale))
        total = 0
        async for batch in self.store.iter_all(batch=_BATCH):
            await self._index(batch, raise_errors=True)
            total += len(batch)
        self.stale = False
        return total

    async def repair(self) -> int:
        """Add what the index misses and drop what the database no longer has."""
        if self.index is None or self.embedder is None:
            return 0
        try:
            if not self.index.is_open and await self.index.open(embedder=self.embedder.name):
                return await self.reindex()
            in_db = await self.store.owners()
            extra = 0
            for user_id, ids in (await self.index.ids()).items():
                gone = sorted(i for i in ids if in_db.get(i) != user_id)
                extra += len(gone)
                await self.index.delete(user_id, gone)
                for i in ids:
                    if in_db.get(i) == user_id:
                        del in_db[i]
            missing = sorted(in_db)
            for start in range(0, len(missing), _BATCH):
                chunk = missing[start : start + _BATCH]
                records = await self.store.by_ids_any(chunk)
                await self._index(records, raise_errors=True)
        except (EmbeddingUnavailable, VectorIndexError) as exc:
            self._stale(exc)
            return 0
        if extra or missing:
            log.info("vector index repaired: %d added, %d removed", len(missing), extra)
        self.stale = False
        return len(missing) + extra

    async def _index(self, records: Sequence[MemoryRecord], *, raise_errors: bool = False) -> None:
        if self.index is None or self.embedder is None or not records:
            return
        try:
            vectors = await self.embedder.embed_passages([r.content for r in records])
            await self.index.upsert(list(zip(records, vectors, strict=True)))
        except (EmbeddingUnavailable, VectorIndexError) as exc:
            if raise_errors:
                raise
            self._stale(exc)

    def _stale(self, exc: Exception) -> None:
        if not self.stale:
            log.warning("memory index out of date (%s); it will be repaired", exc)
        self.stale = True
