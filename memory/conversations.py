"""Conversations and messages: the durable queue of inbound work and the chat history.

An inbound message is written before the channel is acknowledged and stays `pending` until its
reply and outbox row are committed in the same transaction, so a crash anywhere in between leads
to exactly one reply after restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.models import Conversation, Message, MessageStatus, OutboxItem


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

    async def conversation_for(self, *, user_id: int, channel: str, chat_id: str) -> int:
        """The conversation of a chat, created on first use."""
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
        row = Message(
            conversation_id=conversation_id,
            role="user",
            text=text,
            channel=channel,
            channel_message_id=channel_message_id,
            status=status,
        )
        async with self._db.sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None
        return InboundRecord(
            message_id=row.id,
            conversation_id=conversation_id,
            user_id=user_id,
            channel=channel,
            chat_id=chat_id,
            text=text,
            channel_message_id=channel_message_id,
            attempts=0,
            created_at=row.created_at,
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
        self, conversation_id: int, *, before_id: int, limit: int
    ) -> list[HistoryEntry]:
        """The last `limit` answered messages before `before_id`, oldest first."""
        query = (
            select(Message.role, Message.text, Message.created_at)
            .where(
                Message.conversation_id == conversation_id,
                Message.id < before_id,
                Message.status == MessageStatus.DONE,
            )
            .order_by(Message.id.desc())
            .limit(limit)
        )
        async with self._db.sessions() as session:
            rows = (await session.execute(query)).all()
        return [HistoryEntry(role=r, text=t, created_at=c) for r, t, c in reversed(rows)]

    async def start_attempt(self, message_id: int) -> int:
        """Count a new turn for the message; returns the attempt number."""
        async with self._db.sessions() as session:
            await session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(attempts=Message.attempts + 1)
            )
            await session.commit()
            attempts = await session.scalar(
                select(Message.attempts).where(Message.id == message_id)
            )
        return int(attempts or 0)

    async def complete(
        self,
        inbound: InboundRecord,
        *,
        reply: str,
        usage: Usage,
        status: MessageStatus = MessageStatus.DONE,
    ) -> int | None:
        """Store the reply, its outbox row, and close the inbound message — atomically.

        Returns the outbox id, or None when the message was already answered (a retried turn
        racing a finished one), so the reply is never sent twice.
        """
        async with self._db.sessions() as session, session.begin():
            closed = await session.execute(
                update(Message)
                .where(Message.id == inbound.message_id, Message.status == MessageStatus.PENDING)
                .values(status=status)
            )
            if closed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            answer = Message(
                conversation_id=inbound.conversation_id,
                role="assistant",
                text=reply,
                channel=inbound.channel,
                reply_to_id=inbound.message_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
            session.add(answer)
            await session.flush()
            item = OutboxItem(
                channel=inbound.channel,
                chat_id=inbound.chat_id,
                text=reply,
                conversation_id=inbound.conversation_id,
                message_id=answer.id,
                reply_to_channel_message_id=None,
            )
            session.add(item)
            await session.flush()
            return item.id

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
