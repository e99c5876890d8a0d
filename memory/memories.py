"""Long-term memories in the database (the source of truth; the vector index follows it).

Every method takes the user id and filters by it: one user never reads another's memories.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory.db import Database
from memory.fulltext import fulltext_search
from memory.models import Memory, MemoryKind
from memory.segment import search_text
from memory.types import utcnow

MAX_CONTENT = 2000
"""Longer texts are cut: a memory is a sentence or a paragraph, never a document."""


@dataclass(frozen=True, kw_only=True)
class MemoryRecord:
    """A memory as the rest of the system sees it."""

    id: int
    user_id: int
    kind: str
    content: str
    importance: float
    confidence: float
    valid_from: datetime
    valid_to: datetime | None
    created_at: datetime
    external_id: str | None = None
    subject: str | None = None
    entities: list[str] = field(default_factory=list)
    supersedes_id: int | None = None
    source_message_ids: list[int] = field(default_factory=list)

    @property
    def current(self) -> bool:
        """False once a newer memory superseded it."""
        return self.valid_to is None


@dataclass(frozen=True, kw_only=True)
class NewMemory:
    """What is needed to store a memory."""

    content: str
    kind: str = MemoryKind.FACT
    importance: float = 0.5
    confidence: float = 0.8
    subject: str | None = None
    entities: Sequence[str] = ()
    valid_from: datetime | None = None
    source_message_ids: Sequence[int] = ()
    external_id: str | None = None
    due_at: datetime | None = None
    """For commitments: when it is due (follow-ups are planned from it)."""


def to_record(row: Memory) -> MemoryRecord:
    return MemoryRecord(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        content=row.content,
        importance=row.importance,
        confidence=row.confidence,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        created_at=row.created_at,
        external_id=row.external_id,
        subject=row.subject,
        entities=json.loads(row.entities) if row.entities else [],
        supersedes_id=row.supersedes_id,
        source_message_ids=json.loads(row.source_message_ids) if row.source_message_ids else [],
    )


_COLUMNS = [c for c in Memory.__table__.columns if c.name != "search_text"]


def _from_mapping(row: Any) -> MemoryRecord:
    return MemoryRecord(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        content=row["content"],
        importance=row["importance"],
        confidence=row["confidence"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        created_at=row["created_at"],
        external_id=row["external_id"],
        subject=row["subject"],
        entities=json.loads(row["entities"]) if row["entities"] else [],
        supersedes_id=row["supersedes_id"],
        source_message_ids=json.loads(row["source_message_ids"])
        if row["source_message_ids"]
        else [],
    )


def clean_content(text: str) -> str:
    """The text as stored: whitespace collapsed, cut to MAX_CONTENT."""
    return " ".join(text.split())[:MAX_CONTENT]


def _values(row: Memory) -> dict[str, Any]:
    """Column values of an unsaved row, for a bulk insert."""
    return {c.name: getattr(row, c.key) for c in Memory.__table__.columns if c.name != "id"}


def new_row(user_id: int, new: NewMemory, *, supersedes_id: int | None = None) -> Memory:
    content = clean_content(new.content)
    now = utcnow()
    return Memory(
        user_id=user_id,
        external_id=new.external_id,
        kind=new.kind if new.kind in MemoryKind.__members__.values() else MemoryKind.FACT,
        content=content,
        subject=new.subject,
        entities=json.dumps(list(new.entities), ensure_ascii=False) if new.entities else None,
        importance=min(1.0, max(0.0, new.importance)),
        confidence=min(1.0, max(0.0, new.confidence)),
        valid_from=new.valid_from or now,
        supersedes_id=supersedes_id,
        source_message_ids=json.dumps(list(new.source_message_ids))
        if new.source_message_ids
        else None,
        search_text=search_text(content),
        due_at=new.due_at,
        created_at=new.valid_from or now,
        updated_at=now,
    )


class MemoryStore:
    """Reads and writes memories, always scoped to one user."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user_id: int, new: NewMemory) -> MemoryRecord:
        """Store a memory; with an `external_id` already present, return the stored one."""
        row = new_row(user_id, new)
        async with self._db.sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await session.scalar(
                    select(Memory).where(
                        Memory.user_id == user_id, Memory.external_id == new.external_id
                    )
                )
                if found is None:
                    raise
                return to_record(found)
            return to_record(row)

    async def add_many(self, user_id: int, items: Sequence[NewMemory]) -> list[MemoryRecord | None]:
        """Store a batch in one transaction; the result is aligned with `items`, with None where
        an external id was already stored (imports are idempotent)."""
        wanted = [i.external_id for i in items if i.external_id]
        existing: set[str] = set()
        async with self._db.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found = await conn.execute(
                    select(Memory.external_id).where(
                        Memory.user_id == user_id, Memory.external_id.in_(chunk)
                    )
                )
                existing |= {e for e in found.scalars() if e is not None}
        keep: list[NewMemory | None] = []
        seen: set[str] = set()
        for item in items:
            if item.external_id and (item.external_id in existing or item.external_id in seen):
                keep.append(None)
                continue
            if item.external_id:
                seen.add(item.external_id)
            keep.append(item)
        # Segmentation (jieba) is CPU work: keep it off the event loop.
        rows = await asyncio.to_thread(
            lambda: [_values(new_row(user_id, i)) if i is not None else None for i in keep]
        )
        params = [r for r in rows if r is not None]
        ids: list[int] = []
        if params:
            async with self._db.engine.begin() as conn:
                result = await conn.execute(
                    insert(Memory).returning(Memory.id, sort_by_parameter_order=True), params
                )
                ids = [int(i) for i in result.scalars()]
        out: list[MemoryRecord | None] = []
        it = iter(ids)
        for row in rows:
            if row is None:
                out.append(None)
            else:
                out.append(_from_mapping({**row, "id": next(it)}))
        return out

    async def supersede(
        self, user_id: int, old_id: int, new: NewMemory, *, at: datetime | None = None
    ) -> MemoryRecord | None:
        """Close `old_id` (valid_to) and store its replacement linked to it; None if not found."""
        async with self._db.sessions() as session, session.begin():
            old = await session.scalar(
                select(Memory).where(Memory.id == old_id, Memory.user_id == user_id)
            )
            if old is None:
                return None
            old.valid_to = at or utcnow()
            old.updated_at = utcnow()
            row = new_row(user_id, new, supersedes_id=old_id)
            session.add(row)
            await session.flush()
            return to_record(row)

    async def update(
        self,
        user_id: int,
        memory_id: int,
        *,
        content: str | None = None,
        kind: str | None = None,
        importance: float | None = None,
        source_message_id: int | None = None,
    ) -> MemoryRecord | None:
        """Correct a memory in place (the user's edit, or a merged near-duplicate)."""
        async with self._db.sessions() as session, session.begin():
            row = await session.scalar(
                select(Memory).where(Memory.id == memory_id, Memory.user_id == user_id)
            )
            if row is None:
                return None
            if content is not None:
                row.content = " ".join(content.split())[:MAX_CONTENT]
                row.search_text = search_text(row.content)
            if kind is not None and kind in MemoryKind.__members__.values():
                row.kind = kind
            if importance is not None:
                row.importance = min(1.0, max(0.0, importance))
            if source_message_id is not None:
                sources = json.loads(row.source_message_ids) if row.source_message_ids else []
                if source_message_id not in sources:
                    row.source_message_ids = json.dumps([*sources, source_message_id])
            row.updated_at = utcnow()
            await session.flush()
            return to_record(row)

    async def delete(self, user_id: int, memory_id: int) -> bool:
        """Remove a memory for good (the caller also removes it from the vector index)."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                delete(Memory).where(Memory.id == memory_id, Memory.user_id == user_id)
            )
        return bool(result.rowcount)

    async def get(self, user_id: int, memory_id: int) -> MemoryRecord | None:
        """One memory of the user."""
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(Memory).where(Memory.id == memory_id, Memory.user_id == user_id)
            )
            return to_record(row) if row else None

    async def by_external_id(self, user_id: int, external_id: str) -> MemoryRecord | None:
        """A memory by the id it was imported with."""
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(Memory).where(Memory.user_id == user_id, Memory.external_id == external_id)
            )
            return to_record(row) if row else None

    async def by_ids(self, user_id: int, ids: Sequence[int]) -> dict[int, MemoryRecord]:
        """Memories of the user among `ids` (ids of other users are silently absent).

        Core rather than ORM: recall loads up to ~150 candidates per message.
        """
        if not ids:
            return {}
        query = select(*_COLUMNS).where(Memory.user_id == user_id, Memory.id.in_(list(ids)))
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return {int(r["id"]): _from_mapping(r) for r in rows}

    async def by_ids_any(self, ids: Sequence[int]) -> list[MemoryRecord]:
        """Memories by id across users, for index maintenance only (never for recall)."""
        if not ids:
            return []
        async with self._db.sessions() as session:
            rows = await session.scalars(select(Memory).where(Memory.id.in_(list(ids))))
            return [to_record(r) for r in rows]

    async def recent(
        self,
        user_id: int,
        *,
        kinds: Sequence[str] | None = None,
        include_history: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[MemoryRecord]:
        """The user's memories, newest first; superseded ones only with `include_history`."""
        query = select(Memory).where(Memory.user_id == user_id)
        if kinds:
            query = query.where(Memory.kind.in_(list(kinds)))
        if not include_history:
            query = query.where(Memory.valid_to.is_(None))
        query = (
            query.order_by(Memory.valid_from.desc(), Memory.id.desc()).limit(limit).offset(offset)
        )
        async with self._db.sessions() as session:
            return [to_record(r) for r in await session.scalars(query)]

    async def profile(self, user_id: int, *, limit: int = 12) -> list[MemoryRecord]:
        """Current preferences and standing instructions, most important first, in a stable
        order (the prompt's cached prefix depends on it)."""
        query = (
            select(Memory)
            .where(
                Memory.user_id == user_id,
                Memory.valid_to.is_(None),
                Memory.kind.in_([MemoryKind.PREFERENCE, MemoryKind.INSTRUCTION]),
            )
            .order_by(Memory.importance.desc(), Memory.id)
            .limit(limit)
        )
        async with self._db.sessions() as session:
            return [to_record(r) for r in await session.scalars(query)]

    async def count(self, user_id: int | None = None) -> int:
        """How many memories (of one user, or all)."""
        query = select(func.count(Memory.id))
        if user_id is not None:
            query = query.where(Memory.user_id == user_id)
        async with self._db.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def iter_all(self, *, batch: int = 1000) -> AsyncIterator[list[MemoryRecord]]:
        """Every memory of every user in id order, in batches (index rebuilds)."""
        last = 0
        while True:
            async with self._db.sessions() as session:
                rows = list(
                    await session.scalars(
                        select(Memory).where(Memory.id > last).order_by(Memory.id).limit(batch)
                    )
                )
            if not rows:
                return
            last = rows[-1].id
            yield [to_record(r) for r in rows]

    async def owners(self) -> dict[int, int]:
        """memory id → user id for every memory (to diff against the vector index)."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(Memory.id, Memory.user_id))
            return {int(i): int(u) for i, u in rows.all()}

    async def keyword_search(
        self, user_id: int, query: str, *, limit: int = 50, include_history: bool = False
    ) -> list[tuple[int, float]]:
        """(id, score) by full-text relevance, best first (see `memory.fulltext`)."""
        return await fulltext_search(
            self._db, user_id, query, limit=limit, include_history=include_history
        )

    async def in_window(
        self,
        user_id: int,
        start: datetime,
        end: datetime,
        *,
        limit: int = 50,
        include_history: bool = True,
    ) -> list[int]:
        """Ids of memories that became true within [start, end), oldest first."""
        query = (
            select(Memory.id)
            .where(Memory.user_id == user_id, Memory.valid_from >= start, Memory.valid_from < end)
            .order_by(Memory.valid_from)
            .limit(limit)
        )
        if not include_history:
            query = query.where(Memory.valid_to.is_(None))
        async with self._db.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def mark_superseded(self, user_id: int, memory_id: int, *, at: datetime) -> None:
        """Close a memory without a replacement row (the replacement already exists)."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(Memory)
                .where(Memory.id == memory_id, Memory.user_id == user_id)
                .values(valid_to=at, updated_at=utcnow())
            )
