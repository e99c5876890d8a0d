"""Applying what extraction learnt from one message: all operations, or none, exactly once.

A `reflections` row is written with the reply (same transaction) and closed in the same
transaction as the memory changes, so a crash anywhere leads to one full re-run and never to a
half-applied or doubled result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.memories import MemoryRecord, NewMemory, clean_content, new_row, to_record
from memory.models import Memory, Message, MessageStatus, Reflection
from memory.segment import search_text
from memory.types import utcnow


@dataclass(frozen=True, kw_only=True)
class Add:
    """Store a new memory."""

    memory: NewMemory


@dataclass(frozen=True, kw_only=True)
class Supersede:
    """Close `target` and store its replacement."""

    target: int
    memory: NewMemory


@dataclass(frozen=True, kw_only=True)
class Update:
    """Correct `target` in place (or merge a near-duplicate into it)."""

    target: int
    content: str | None = None
    importance: float | None = None


@dataclass(frozen=True, kw_only=True)
class Delete:
    """Remove `target` (the user retracted it)."""

    target: int


Operation = Add | Supersede | Update | Delete


@dataclass(kw_only=True)
class Applied:
    """What changed, for the vector index."""

    user_id: int
    upserted: list[MemoryRecord] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """One user message and the reply to it, the input of extraction."""

    message_id: int
    user_id: int
    conversation_id: int
    text: str
    reply: str
    said_at: object


class ReflectionStore:
    """Reflection bookkeeping and the atomic application of operations."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def pending(self, *, limit: int = 1000) -> list[int]:
        """Message ids still waiting for extraction, oldest first (requeued at start)."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(Reflection.message_id)
                .where(Reflection.status == "pending")
                .order_by(Reflection.message_id)
                .limit(limit)
            )
            return list(rows.scalars())

    async def exchange(self, message_id: int) -> Exchange | None:
        """The message, its reply and who said it; None if the message is gone."""
        async with self._db.sessions() as session:
            inbound = await session.get(Message, message_id)
            if inbound is None or inbound.status != MessageStatus.DONE:
                return None
            reply = await session.scalar(
                select(Message.text).where(Message.reply_to_id == message_id).limit(1)
            )
            user_id = await session.scalar(
                select(Reflection.user_id).where(Reflection.message_id == message_id)
            )
            if user_id is None:
                return None
            return Exchange(
                message_id=message_id,
                user_id=int(user_id),
                conversation_id=inbound.conversation_id,
                text=inbound.text,
                reply=reply or "",
                said_at=inbound.created_at,
            )

    async def attempt(self, message_id: int) -> int:
        """Count an extraction attempt; returns the new count."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(Reflection)
                .where(Reflection.message_id == message_id)
                .values(attempts=Reflection.attempts + 1)
            )
            return int(
                await conn.scalar(
                    select(Reflection.attempts).where(Reflection.message_id == message_id)
                )
                or 0
            )

    async def drop(self, message_id: int) -> None:
        """Give up on a message (invalid output twice); nothing was applied."""
        await self._close(message_id, "dropped")

    async def _close(self, message_id: int, status: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(Reflection)
                .where(Reflection.message_id == message_id)
                .values(status=status, finished_at=utcnow())
            )

    async def apply(
        self, user_id: int, message_id: int, operations: Sequence[Operation]
    ) -> Applied | None:
        """Apply every operation and close the reflection in one transaction.

        Returns None when the reflection was already done (a retry after a crash that happened
        after the commit): nothing is applied twice.
        """
        applied = Applied(user_id=user_id)
        now = utcnow()
        async with self._db.sessions() as session, session.begin():
            closed = await session.execute(
                update(Reflection)
                .where(Reflection.message_id == message_id, Reflection.status == "pending")
                .values(status="done", finished_at=now)
            )
            if closed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            new_rows: list[Memory] = []
            for op in operations:
                if isinstance(op, Add):
                    row = new_row(user_id, op.memory)
                    session.add(row)
                    new_rows.append(row)
                elif isinstance(op, Supersede):
                    old = await _owned(session, user_id, op.target)
                    if old is None:
                        continue
                    old.valid_to, old.updated_at = now, now
                    applied.closed.append(old.id)
                    row = new_row(user_id, op.memory, supersedes_id=old.id)
                    session.add(row)
                    new_rows.append(row)
                elif isinstance(op, Update):
                    found = await _owned(session, user_id, op.target)
                    if found is None:
                        continue
                    if op.content:
                        found.content = clean_content(op.content)
                        found.search_text = search_text(found.content)
                    if op.importance is not None:
                        found.importance = max(found.importance, min(1.0, op.importance))
                    found.updated_at = now
                    new_rows.append(found)
                else:
                    gone = await session.execute(
                        delete(Memory).where(Memory.id == op.target, Memory.user_id == user_id)
                    )
                    if gone.rowcount:  # type: ignore[attr-defined]
                        applied.deleted.append(op.target)
            await session.flush()
            applied.upserted = [to_record(r) for r in new_rows]
        return applied


async def _owned(session: AsyncSession, user_id: int, memory_id: int) -> Memory | None:
    """The memory if it belongs to the user (extraction never touches another user's rows)."""
    return await session.scalar(
        select(Memory).where(Memory.id == memory_id, Memory.user_id == user_id)
    )
