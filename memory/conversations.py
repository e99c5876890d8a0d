"""Conversations and messages: the durable queue of inbound work and the chat history.

An inbound message is written before the channel is acknowledged and stays `pending` until its
reply and outbox row are committed in the same transaction, so a crash anywhere in between leads
to exactly one reply after restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.models import (
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    Reflection,
)
from memory.outbox import OutboxEntry
from memory.types import utcnow

# Statements built once: constructing SQLAlchemy statements per call costs more than running
# them on SQLite.
_INSERT_MESSAGE = insert(Message).returning(Message.id)
_INSERT_OUTBOX = insert(OutboxItem).returning(OutboxItem.id)
_CLOSE_INBOUND = (
    update(Message)
    .where(Message.id == bindparam("message_id"), Message.status == MessageStatus.PENDING)
    .values(status=bindparam("new_status"))
)
_HISTORY: dict[int, Select[str, str, datetime]] = {}
_HISTORY_FILTER = (
    Message.conversation_id == bindparam("conversation_id"),
    Message.id < bindparam("before_id"),
    Message.id > bindparam("after_id"),
    Message.status == MessageStatus.DONE,
)
_HISTORY_COUNT = select(func.count(Message.id)).where(*_HISTORY_FILTER)


@dataclass(frozen=True, kw_only=True)
class InboundRecord:
    """A persisted inbound message, with what the runtime needs to process it."""

    message_id: int
    conversation_id: int
    user_id: int
    channel: str
    chat_id: str
    text: str
    channel_message_id: str | None
    attempts: int
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One past message as the prompt shows it."""

    role: str
    text: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Tokens a turn spent, stored with the reply."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class ConversationStore:
    """Reads and writes conversations and messages."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # A chat's conversation never changes, so its id is looked up once per process.
        self._conversation_ids: dict[tuple[str, str], int] = {}

    async def conversation_for(self, *, user_id: int, channel: str, chat_id: str) -> int:
        """The conversation of a chat, created on first use."""
        cached = self._conversation_ids.get((channel, chat_id))
        if cached is not None:
            return cached
        found = await self._conversation_for(user_id=user_id, channel=channel, chat_id=chat_id)
        self._conversation_ids[(channel, chat_id)] = found
        return found

    async def _conversation_for(self, *, user_id: int, channel: str, chat_id: str) -> int:
        async with self._db.sessions() as session:
            found = await self._find(session, channel, chat_id)
            if found is not None:
                return found
            convo = Conversation(user_id=user_id, channel=channel, chat_id=chat_id)
            session.add(convo)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await self._find(session, channel, chat_id)
                assert found is not None
                return found
            return convo.id

    @staticmethod
    async def _find(session: AsyncSession, channel: str, chat_id: str) -> int | None:
        return await session.scalar(
            select(Conversation.id).where(
                Conversation.channel == channel, Conversation.chat_id == chat_id
            )
        )

    async def record_inbound(
        self,
        *,
        user_id: int,
        channel: str,
        chat_id: str,
        text: str,
        channel_message_id: str | None,
        status: MessageStatus = MessageStatus.PENDING,
    ) -> InboundRecord | None:
        """Persist an inbound message; None when the channel delivered it before (a duplicate)."""
        conversation_id = await self.conversation_for(
            user_id=user_id, channel=channel, chat_id=chat_id
        )
        created_at = utcnow()
        params = {
            "conversation_id": conversation_id,
            "role": "user",
            "text": text,
            "channel": channel,
            "channel_message_id": channel_message_id,
            "status": status,
            "reply_to_id": None,
            "attempts": 0,
            "prompt_tokens": None,
            "completion_tokens": None,
            "created_at": created_at,
        }
        try:
            async with self._db.engine.begin() as conn:
                message_id = (await conn.execute(_INSERT_MESSAGE, params)).scalar_one()
        except IntegrityError:
            return None
        return InboundRecord(
            message_id=message_id,
            conversation_id=conversation_id,
            user_id=user_id,
            channel=channel,
            chat_id=chat_id,
            text=text,
            channel_message_id=channel_message_id,
            attempts=0,
            created_at=created_at,
        )

    async def inbound(self, message_id: int) -> InboundRecord | None:
        """One inbound message as the queue needs it (a turn resumed after an approval)."""
        query = (
            select(Message, Conversation)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id, Message.role == "user")
        )
        async with self._db.sessions() as session:
            row = (await session.execute(query)).one_or_none()
        if row is None:
            return None
        msg, convo = row
        return InboundRecord(
            message_id=msg.id,
            conversation_id=convo.id,
            user_id=convo.user_id,
            channel=convo.channel,
            chat_id=convo.chat_id,
            text=msg.text,
            channel_message_id=msg.channel_message_id,
            attempts=msg.attempts,
            created_at=msg.created_at,
        )

    async def pending(self, *, channels: frozenset[str] | None = None) -> list[InboundRecord]:
        """Inbound messages not yet answered, oldest first (requeued at start)."""
        query = (
            select(Message, Conversation)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.role == "user", Message.status == MessageStatus.PENDING)
            .order_by(Message.id)
        )
        if channels is not None:
            query = query.where(Message.channel.in_(channels))
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            InboundRecord(
                message_id=msg.id,
                conversation_id=convo.id,
                user_id=convo.user_id,
                channel=convo.channel,
                chat_id=convo.chat_id,
                text=msg.text,
                channel_message_id=msg.channel_message_id,
                attempts=msg.attempts,
                created_at=msg.created_at,
            )
            for msg, convo in rows
        ]

    async def history(
        self,
        conversation_id: int,
        *,
        before_id: int,
        limit: int,
        step: int = 10,
        after_id: int = 0,
    ) -> list[HistoryEntry]:
        """Recent answered messages before `before_id`, oldest first: `limit` to `limit+step-1`.

        The window's start moves in jumps of `step` messages instead of one message per turn, so
        the prompt prefix (system prompt, tools, history) stays byte-identical for several turns
        and vLLM's prefix cache keeps hitting; a sliding window would break it on every turn.
        """
        params = {"conversation_id": conversation_id, "before_id": before_id, "after_id": after_id}
        query = _HISTORY.get(limit + step)
        if query is None:
            query = _HISTORY[limit + step] = (
                select(Message.role, Message.text, Message.created_at)
                .where(*_HISTORY_FILTER)
                .order_by(Message.id.desc())
                .limit(limit + step)
            )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query, params)).all()
            total = len(rows)
            if total > limit:
                total = int(await conn.scalar(_HISTORY_COUNT, params) or 0)
        start = max(0, ((total - limit) // step) * step) if total > limit else 0
        window = rows[: total - start]
        return [HistoryEntry(role=r, text=t, created_at=c) for r, t, c in reversed(window)]

    async def summary(self, conversation_id: int) -> tuple[str, int]:
        """The rolling summary and the last message id it covers ("", 0 when none)."""
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ConversationSummary.summary, ConversationSummary.upto_message_id).where(
                        ConversationSummary.conversation_id == conversation_id
                    )
                )
            ).first()
        return (row[0], row[1]) if row else ("", 0)

    async def set_summary(
        self, conversation_id: int, *, summary: str, upto_message_id: int
    ) -> None:
        """Replace the rolling summary (it only moves forward)."""
        async with self._db.sessions() as session, session.begin():
            row = await session.get(ConversationSummary, conversation_id)
            if row is None:
                session.add(
                    ConversationSummary(
                        conversation_id=conversation_id,
                        summary=summary,
                        upto_message_id=upto_message_id,
                        updated_at=utcnow(),
                    )
                )
            elif upto_message_id > row.upto_message_id:
                row.summary, row.upto_message_id, row.updated_at = (
                    summary,
                    upto_message_id,
                    utcnow(),
                )

    async def unsummarised(
        self, conversation_id: int, *, after_id: int, keep_recent: int
    ) -> list[tuple[int, str, str]]:
        """(id, role, text) of answered messages after `after_id`, except the newest
        `keep_recent` (those stay verbatim in the prompt)."""
        query = (
            select(Message.id, Message.role, Message.text)
            .where(
                Message.conversation_id == conversation_id,
                Message.id > after_id,
                Message.status == MessageStatus.DONE,
            )
            .order_by(Message.id)
        )
        async with self._db.engine.connect() as conn:
            rows = [(int(i), r, t) for i, r, t in (await conn.execute(query)).all()]
        return rows[: max(0, len(rows) - keep_recent)]

    async def count_requeue(self, message_ids: list[int]) -> None:
        """Count one more attempt for messages requeued after a restart (poison detection)."""
        if not message_ids:
            return
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(Message)
                .where(Message.id.in_(message_ids))
                .values(attempts=Message.attempts + 1)
            )

    async def complete(
        self,
        inbound: InboundRecord,
        *,
        reply: str,
        usage: Usage,
        status: MessageStatus = MessageStatus.DONE,
        reflect: bool = False,
    ) -> OutboxEntry | None:
        """Store the reply, its outbox row, and close the inbound message — atomically.

        The outbox row is born claimed (`sending`) because this process delivers it right away;
        a crash before delivery leaves it `sending`, and recovery re-sends it once. Returns None
        when the message was already answered (a retried turn racing a finished one), so the reply
        is never sent twice.
        """
        now = utcnow()
        async with self._db.engine.begin() as conn:
            closed = await conn.execute(
                _CLOSE_INBOUND, {"message_id": inbound.message_id, "new_status": status}
            )
            if closed.rowcount != 1:
                return None
            if reflect:
                # Queued durably with the reply: extraction runs later, off the hot path.
                await conn.execute(
                    insert(Reflection).values(
                        message_id=inbound.message_id,
                        user_id=inbound.user_id,
                        status="pending",
                        attempts=0,
                        created_at=now,
                    )
                )
            answer_id = (
                await conn.execute(
                    _INSERT_MESSAGE,
                    {
                        "conversation_id": inbound.conversation_id,
                        "role": "assistant",
                        "text": reply,
                        "channel": inbound.channel,
                        "channel_message_id": None,
                        "status": MessageStatus.DONE,
                        "reply_to_id": inbound.message_id,
                        "attempts": 0,
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "created_at": now,
                    },
                )
            ).scalar_one()
            outbox_id = (
                await conn.execute(
                    _INSERT_OUTBOX,
                    {
                        "channel": inbound.channel,
                        "chat_id": inbound.chat_id,
                        "text": reply,
                        "conversation_id": inbound.conversation_id,
                        "message_id": answer_id,
                        "reply_to_channel_message_id": None,
                        "status": OutboxStatus.SENDING,
                        "parts_sent": 0,
                        "attempts": 1,
                        "next_attempt_at": now,
                        "channel_message_ids": None,
                        "last_error": None,
                        "created_at": now,
                        "delivered_at": None,
                    },
                )
            ).scalar_one()
        return OutboxEntry(
            id=outbox_id,
            channel=inbound.channel,
            chat_id=inbound.chat_id,
            text=reply,
            parts_sent=0,
            attempts=1,
            reply_to_channel_message_id=None,
            channel_message_ids=[],
        )

    async def set_text(self, message_id: int, text: str) -> None:
        """Replace a stored message's text (its attachments resolved into lines for the model)."""
        async with self._db.engine.begin() as conn:
            await conn.execute(update(Message).where(Message.id == message_id).values(text=text))

    async def set_status(self, message_id: int, status: MessageStatus) -> None:
        """Close an inbound message without a stored reply (rejected or failed)."""
        async with self._db.sessions() as session:
            await session.execute(
                update(Message).where(Message.id == message_id).values(status=status)
            )
            await session.commit()

    async def count(self, *, conversation_id: int | None = None, role: str | None = None) -> int:
        """Number of messages, for tests, metrics and `dadang doctor`."""
        query = select(func.count(Message.id))
        if conversation_id is not None:
            query = query.where(Message.conversation_id == conversation_id)
        if role is not None:
            query = query.where(Message.role == role)
        async with self._db.sessions() as session:
            return int(await session.scalar(query) or 0)
