"""The outbox: replies owed to channels, delivered at least once and at most twice.

A row is claimed (`sending`) before the channel call and marked `delivered` after it; a crash in
between leaves it `sending`, and the next start puts it back to `pending`, so it is re-sent at
most once. Long replies are split into parts and `parts_sent` keeps the parts already delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from memory.db import Database
from memory.models import OutboxItem, OutboxStatus
from memory.types import utcnow


@dataclass(frozen=True, kw_only=True)
class OutboxEntry:
    """A claimed outbox row."""

    id: int
    channel: str
    chat_id: str
    text: str
    parts_sent: int
    attempts: int
    reply_to_channel_message_id: str | None
    channel_message_ids: list[str]


class OutboxStore:
    """Reads and writes the outbox."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, *, channel: str, chat_id: str, text: str, conversation_id: int | None = None
    ) -> int:
        """Queue a message that has no stored assistant reply (notices, pairing prompts)."""
        async with self._db.sessions() as session:
            item = OutboxItem(
                channel=channel, chat_id=chat_id, text=text, conversation_id=conversation_id
            )
            session.add(item)
            await session.commit()
            return item.id

    async def due(
        self, *, channels: frozenset[str], now: datetime | None = None, limit: int = 500
    ) -> list[tuple[int, str, str]]:
        """(id, channel, chat id) of pending rows of `channels` that are due, oldest first."""
        query = (
            select(OutboxItem.id, OutboxItem.channel, OutboxItem.chat_id)
            .where(
                OutboxItem.status == OutboxStatus.PENDING,
                OutboxItem.next_attempt_at <= (now or utcnow()),
                OutboxItem.channel.in_(channels),
            )
            .order_by(OutboxItem.id)
            .limit(limit)
        )
        async with self._db.sessions() as session:
            return [(i, c, chat) for i, c, chat in (await session.execute(query)).all()]

    async def next_due_at(self) -> datetime | None:
        """When the earliest pending row becomes due."""
        async with self._db.sessions() as session:
            return await session.scalar(
                select(func.min(OutboxItem.next_attempt_at)).where(
                    OutboxItem.status == OutboxStatus.PENDING
                )
            )

    async def claim(self, item_id: int) -> OutboxEntry | None:
        """Mark a pending row `sending` and return it; None if someone else took it."""
        async with self._db.sessions() as session, session.begin():
            taken = await session.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENDING, attempts=OutboxItem.attempts + 1)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(OutboxItem, item_id)
            assert row is not None
            return OutboxEntry(
                id=row.id,
                channel=row.channel,
                chat_id=row.chat_id,
                text=row.text,
                parts_sent=row.parts_sent,
                attempts=row.attempts,
                reply_to_channel_message_id=row.reply_to_channel_message_id,
                channel_message_ids=(row.channel_message_ids or "").split(",")
                if row.channel_message_ids
                else [],
            )

    async def part_sent(self, item_id: int, *, parts_sent: int, channel_ids: list[str]) -> None:
        """Record progress through a split reply."""
        async with self._db.sessions() as session:
            await session.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id)
                .values(parts_sent=parts_sent, channel_message_ids=",".join(channel_ids))
            )
            await session.commit()

    async def delivered(self, item_id: int, *, parts_sent: int, channel_ids: list[str]) -> None:
        """Mark a row delivered with the ids the channel gave its parts."""
        await self._set(
            item_id,
            status=OutboxStatus.DELIVERED,
            delivered_at=utcnow(),
            parts_sent=parts_sent,
            channel_message_ids=",".join(channel_ids),
        )

    async def retry(self, item_id: int, *, error: str, delay: float) -> None:
        """Put a row back to pending, due after `delay` seconds."""
        await self._set(
            item_id,
            status=OutboxStatus.PENDING,
            last_error=error[:2000],
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )

    async def failed(self, item_id: int, *, error: str) -> None:
        """Give up on a row (reported in metrics and `dadang doctor`)."""
        await self._set(item_id, status=OutboxStatus.FAILED, last_error=error[:2000])

    async def recover(self) -> int:
        """After a crash, return rows left `sending` to `pending`; returns how many."""
        async with self._db.sessions() as session:
            result = await session.execute(
                update(OutboxItem)
                .where(OutboxItem.status == OutboxStatus.SENDING)
                .values(status=OutboxStatus.PENDING)
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def counts(self) -> dict[str, int]:
        """Rows per status, for /metrics and `dadang doctor`."""
        async with self._db.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxItem.status, func.count(OutboxItem.id)).group_by(OutboxItem.status)
                )
            ).all()
        return {status: int(n) for status, n in rows}

    async def _set(self, item_id: int, **values: object) -> None:
        async with self._db.sessions() as session:
            await session.execute(
                update(OutboxItem).where(OutboxItem.id == item_id).values(**values)
            )
            await session.commit()
