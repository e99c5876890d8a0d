"""The outbox: replies owed to channels, delivered at least once and at most twice.

A row is claimed (`sending`) before the channel call and marked `delivered` after it; a crash in
between leaves it `sending`, and the next start puts it back to `pending`, so it is re-sent at
most once. Long replies are split into parts and `parts_sent` keeps the parts already delivered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

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
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)
    """Rows of (label, callback data) shown under the last part."""
    file_id: int | None = None
    """A stored file to send as a document, `text` being its caption."""


class OutboxStore:
    """Reads and writes the outbox."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        channel: str,
        chat_id: str,
        text: str,
        conversation_id: int | None = None,
        claimed: bool = False,
    ) -> OutboxEntry:
        """Queue a message that has no stored assistant reply (notices, pairing prompts).

        `claimed` rows are born `sending` for a sender in this process (see `complete`).
        """
        entry = await self._insert(
            channel=channel,
            chat_id=chat_id,
            text=text,
            claimed=claimed,
            extra={"conversation_id": conversation_id},
        )
        assert entry is not None  # no dedupe key, so no conflict
        return entry

    async def add_file(
        self,
        *,
        channel: str,
        chat_id: str,
        file_id: int,
        caption: str,
        dedupe_key: str | None,
        claimed: bool = False,
    ) -> OutboxEntry | None:
        """Queue a stored file for a chat; None when a row with `dedupe_key` exists already.

        The caller checked that the file belongs to the chat's user: delivery reads it by id.
        """
        return await self._insert(
            channel=channel,
            chat_id=chat_id,
            text=caption,
            claimed=claimed,
            extra={"file_id": file_id, "dedupe_key": dedupe_key},
        )

    async def _insert(
        self, *, channel: str, chat_id: str, text: str, claimed: bool, extra: dict[str, object]
    ) -> OutboxEntry | None:
        """One new row; None when its `dedupe_key` is taken."""
        now = utcnow()
        attempts = 1 if claimed else 0
        statement = (
            insert(OutboxItem)
            .values(
                channel=channel,
                chat_id=chat_id,
                text=text,
                status=OutboxStatus.SENDING if claimed else OutboxStatus.PENDING,
                parts_sent=0,
                attempts=attempts,
                next_attempt_at=now,
                created_at=now,
                **extra,
            )
            .returning(OutboxItem.id)
        )
        try:
            async with self._db.engine.begin() as conn:
                item_id = (await conn.execute(statement)).scalar_one()
        except IntegrityError:
            if extra.get("dedupe_key") is None:
                raise
            return None
        file_id = extra.get("file_id")
        return OutboxEntry(
            id=item_id,
            channel=channel,
            chat_id=chat_id,
            text=text,
            parts_sent=0,
            attempts=attempts,
            reply_to_channel_message_id=None,
            channel_message_ids=[],
            file_id=file_id if isinstance(file_id, int) else None,
        )

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
        async with self._db.engine.connect() as conn:
            return [(i, c, chat) for i, c, chat in (await conn.execute(query)).all()]

    async def claim(self, item_id: int) -> OutboxEntry | None:
        """Mark a pending row `sending` and return it; None if someone else took it."""
        statement = (
            update(OutboxItem)
            .where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENDING, attempts=OutboxItem.attempts + 1)
            .returning(
                OutboxItem.channel,
                OutboxItem.chat_id,
                OutboxItem.text,
                OutboxItem.parts_sent,
                OutboxItem.attempts,
                OutboxItem.reply_to_channel_message_id,
                OutboxItem.channel_message_ids,
                OutboxItem.buttons,
                OutboxItem.file_id,
            )
        )
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            return None
        channel, chat_id, text, parts_sent, attempts, reply_to, sent_ids, buttons, file_id = row
        return OutboxEntry(
            id=item_id,
            channel=channel,
            chat_id=chat_id,
            text=text,
            parts_sent=parts_sent,
            attempts=attempts,
            reply_to_channel_message_id=reply_to,
            channel_message_ids=sent_ids.split(",") if sent_ids else [],
            buttons=[[(label, data) for label, data in r] for r in json.loads(buttons)]
            if buttons
            else [],
            file_id=file_id,
        )

    async def sent_ids(self, item_id: int) -> list[str]:
        """The channel's ids of the parts sent for a row (to edit the message later)."""
        async with self._db.engine.connect() as conn:
            value = await conn.scalar(
                select(OutboxItem.channel_message_ids).where(OutboxItem.id == item_id)
            )
        return value.split(",") if value else []

    async def part_sent(self, item_id: int, *, parts_sent: int, channel_ids: list[str]) -> None:
        """Record progress through a split reply."""
        await self._set(item_id, parts_sent=parts_sent, channel_message_ids=",".join(channel_ids))

    async def delivered(self, item_id: int, *, parts_sent: int, channel_ids: list[str]) -> None:
        """Mark a row delivered with the ids the channel gave its parts."""
        await self.delivered_many([(item_id, parts_sent, channel_ids)])

    async def delivered_many(self, rows: list[tuple[int, int, list[str]]]) -> None:
        """Mark many rows delivered in one transaction (the sender batches its confirmations)."""
        if not rows:
            return
        now = utcnow()
        statement = (
            update(OutboxItem)
            .where(OutboxItem.id == bindparam("item_id"))
            .values(
                status=OutboxStatus.DELIVERED,
                delivered_at=now,
                parts_sent=bindparam("parts"),
                channel_message_ids=bindparam("ids"),
            )
        )
        params = [{"item_id": i, "parts": p, "ids": ",".join(ids)} for i, p, ids in rows]
        async with self._db.engine.begin() as conn:
            await conn.execute(statement, params)

    async def retry(self, item_id: int, *, error: str, delay: float) -> None:
        """Put a row back to pending, due after `delay` seconds.

        Later rows of the same chat are held back as long, so replies never overtake each other.
        """
        due = utcnow() + timedelta(seconds=delay)
        async with self._db.sessions() as session, session.begin():
            row = await session.get(OutboxItem, item_id)
            if row is None:
                return
            row.status, row.last_error, row.next_attempt_at = (
                OutboxStatus.PENDING,
                error[:2000],
                due,
            )
            await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.channel == row.channel,
                    OutboxItem.chat_id == row.chat_id,
                    OutboxItem.id > item_id,
                    OutboxItem.status == OutboxStatus.PENDING,
                    OutboxItem.next_attempt_at < due,
                )
                .values(next_attempt_at=due)
            )

    async def release(self, item_ids: list[int], *, behind: int) -> None:
        """Return rows claimed here but never attempted to `pending`, due with row `behind`.

        A row born claimed that was queued after a row put back for a retry would otherwise stay
        `sending` (the poll only sees `pending` rows) until the next start; due no earlier than
        `behind`, it still never overtakes it.
        """
        if not item_ids:
            return
        async with self._db.sessions() as session, session.begin():
            due = await session.scalar(
                select(OutboxItem.next_attempt_at).where(OutboxItem.id == behind)
            )
            await session.execute(
                update(OutboxItem)
                .where(OutboxItem.id.in_(item_ids), OutboxItem.status == OutboxStatus.SENDING)
                .values(status=OutboxStatus.PENDING, next_attempt_at=due or utcnow())
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
        async with self._db.engine.begin() as conn:
            await conn.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(**values))
