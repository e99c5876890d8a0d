"""The proactive log and per-user proactive state (pause, heartbeat fingerprint)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, cast, column, func, insert, literal, select, table, update
from sqlalchemy.exc import IntegrityError

from memory.db import Database
from memory.models import (
    ChannelIdentity,
    Conversation,
    Memory,
    MemoryKind,
    Message,
    OutboxItem,
    OutboxStatus,
)
from memory.outbox import OutboxEntry
from memory.proactive_models import ProactiveDecision, ProactiveLogEntry, ProactiveState, Reminder
from memory.types import utcnow

# APScheduler's table, named without importing APScheduler into the memory layer.
_JOBS = table("apscheduler_jobs", column("id", String))


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """One proactive decision."""

    id: int
    user_id: int
    at: datetime
    source: str
    decision: str
    reason: str
    text: str | None
    ref: str | None
    model_calls: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, kw_only=True)
class StateRecord:
    """A user's proactive state."""

    paused_until: datetime | None
    last_heartbeat_at: datetime | None
    fingerprint: str | None


@dataclass(frozen=True, kw_only=True)
class Probe:
    """What an idle heartbeat needs: the stored state and the user's activity now."""

    fingerprint: str | None
    marker: str | None
    recheck_at: datetime | None
    activity: str
    """Hash of the latest message id, the memories' count and last change, the last nudge id."""


@dataclass(frozen=True, kw_only=True)
class Question:
    """An assistant message that asked something and got no answer."""

    message_id: int
    conversation_id: int
    text: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class DueCommitment:
    """A current commitment memory with a due time."""

    memory_id: int
    content: str
    due_at: datetime


_LOG_COLUMNS = (
    ProactiveLogEntry.id,
    ProactiveLogEntry.user_id,
    ProactiveLogEntry.at,
    ProactiveLogEntry.source,
    ProactiveLogEntry.decision,
    ProactiveLogEntry.reason,
    ProactiveLogEntry.text,
    ProactiveLogEntry.ref,
    ProactiveLogEntry.model_calls,
    ProactiveLogEntry.prompt_tokens,
    ProactiveLogEntry.completion_tokens,
)


class ProactiveStore:
    """Reads and writes proactive decisions and state, scoped by user."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def log(
        self,
        *,
        user_id: int,
        source: str,
        decision: str,
        reason: str,
        text: str | None = None,
        ref: str | None = None,
        model_calls: int = 0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        outbox_id: int | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append a decision; returns its id."""
        statement = (
            insert(ProactiveLogEntry)
            .values(
                user_id=user_id,
                at=at or utcnow(),
                source=source,
                decision=decision,
                reason=reason,
                text=text,
                ref=ref,
                model_calls=model_calls,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                outbox_id=outbox_id,
            )
            .returning(ProactiveLogEntry.id)
        )
        async with self._db.engine.begin() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def record_sent(
        self,
        *,
        user_id: int,
        source: str,
        reason: str,
        text: str,
        refs: list[str | None],
        channel: str,
        chat_id: str,
        cost: tuple[int, int, int] = (0, 0, 0),
    ) -> OutboxEntry:
        """Queue an unsolicited message and log it as sent, atomically.

        One log row per ref (each item it covers is then followed up once); the budget, the gap
        and the repeat check read these rows, so the message and its log must never part.
        """
        now = utcnow()
        calls, prompt, completion = cost
        async with self._db.engine.begin() as conn:
            outbox_id = (
                await conn.execute(
                    insert(OutboxItem)
                    .values(
                        channel=channel,
                        chat_id=chat_id,
                        text=text,
                        status=OutboxStatus.SENDING,
                        parts_sent=0,
                        attempts=1,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    .returning(OutboxItem.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(ProactiveLogEntry),
                [
                    {
                        "user_id": user_id,
                        "at": now,
                        "source": source,
                        "decision": ProactiveDecision.SENT,
                        "reason": reason,
                        "text": text,
                        "ref": ref,
                        "model_calls": calls if i == 0 else 0,
                        "prompt_tokens": prompt if i == 0 else 0,
                        "completion_tokens": completion if i == 0 else 0,
                        "outbox_id": outbox_id,
                    }
                    for i, ref in enumerate(refs or [None])
                ],
            )
        return OutboxEntry(
            id=outbox_id,
            channel=channel,
            chat_id=chat_id,
            text=text,
            parts_sent=0,
            attempts=1,
            reply_to_channel_message_id=None,
            channel_message_ids=[],
        )

    async def entries(
        self, *, user_id: int | None = None, since: datetime | None = None, limit: int = 50
    ) -> list[LogEntry]:
        """Decisions, newest first."""
        query = select(*_LOG_COLUMNS)
        if user_id is not None:
            query = query.where(ProactiveLogEntry.user_id == user_id)
        if since is not None:
            query = query.where(ProactiveLogEntry.at >= since)
        query = query.order_by(ProactiveLogEntry.id.desc()).limit(limit)
        async with self._db.engine.connect() as conn:
            return [LogEntry(**r._asdict()) for r in (await conn.execute(query)).all()]

    async def sent_since(self, user_id: int, since: datetime) -> tuple[int, datetime | None]:
        """How many unsolicited messages went out since `since`, and when the last one did."""
        query = select(func.count(), func.max(ProactiveLogEntry.at)).where(
            ProactiveLogEntry.user_id == user_id,
            ProactiveLogEntry.decision == ProactiveDecision.SENT,
            ProactiveLogEntry.at >= since,
        )
        async with self._db.engine.connect() as conn:
            count, last = (await conn.execute(query)).one()
        return int(count), last

    async def sent_texts(self, user_id: int, since: datetime) -> list[str]:
        """Texts of unsolicited messages sent since `since` (for the repeat check)."""
        query = (
            select(ProactiveLogEntry.text)
            .where(
                ProactiveLogEntry.user_id == user_id,
                ProactiveLogEntry.decision == ProactiveDecision.SENT,
                ProactiveLogEntry.at >= since,
                ProactiveLogEntry.text.is_not(None),
            )
            .order_by(ProactiveLogEntry.id.desc())
            .limit(50)
        )
        async with self._db.engine.connect() as conn:
            return [t for (t,) in (await conn.execute(query)).all() if t]

    async def followed_up(self, user_id: int, refs: list[str]) -> set[str]:
        """Which of `refs` an unsolicited message already covered (each is followed up once)."""
        if not refs:
            return set()
        query = select(ProactiveLogEntry.ref).where(
            ProactiveLogEntry.user_id == user_id,
            ProactiveLogEntry.decision == ProactiveDecision.SENT,
            ProactiveLogEntry.ref.in_(refs),
        )
        async with self._db.engine.connect() as conn:
            return {r for (r,) in (await conn.execute(query)).all() if r}

    async def state(self, user_id: int) -> StateRecord:
        """The user's proactive state (defaults when none was stored)."""
        query = select(
            ProactiveState.paused_until,
            ProactiveState.last_heartbeat_at,
            ProactiveState.fingerprint,
        ).where(ProactiveState.user_id == user_id)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return StateRecord(paused_until=None, last_heartbeat_at=None, fingerprint=None)
        return StateRecord(paused_until=row[0], last_heartbeat_at=row[1], fingerprint=row[2])

    async def set_state(self, user_id: int, **values: object) -> None:
        """Upsert columns of the user's proactive state."""
        now = utcnow()
        async with self._db.engine.begin() as conn:
            changed = await conn.execute(
                update(ProactiveState)
                .where(ProactiveState.user_id == user_id)
                .values(updated_at=now, **values)
            )
            if changed.rowcount:
                return
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    insert(ProactiveState).values(user_id=user_id, updated_at=now, **values)
                )
        except IntegrityError:  # raced with another writer: update instead
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    update(ProactiveState)
                    .where(ProactiveState.user_id == user_id)
                    .values(updated_at=now, **values)
                )

    async def probe(self, user_id: int) -> Probe:
        """State and activity in one query (the whole cost of a heartbeat when nothing moved)."""
        last_message = (
            select(func.max(Message.id))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.user_id == user_id)
            .scalar_subquery()
        )
        memories = select(func.count(), func.max(Memory.updated_at)).where(
            Memory.user_id == user_id
        )
        memory_count = memories.with_only_columns(func.count()).scalar_subquery()
        memory_changed = memories.with_only_columns(func.max(Memory.updated_at)).scalar_subquery()
        last_nudge = (
            select(func.max(ProactiveLogEntry.id))
            .where(
                ProactiveLogEntry.user_id == user_id,
                ProactiveLogEntry.decision == ProactiveDecision.SENT,
            )
            .scalar_subquery()
        )
        state = (
            select(ProactiveState.fingerprint, ProactiveState.marker, ProactiveState.recheck_at)
            .where(ProactiveState.user_id == user_id)
            .subquery()
        )
        query = select(
            select(state.c.fingerprint).scalar_subquery(),
            select(state.c.marker).scalar_subquery(),
            select(state.c.recheck_at).scalar_subquery(),
            last_message,
            memory_count,
            memory_changed,
            last_nudge,
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).one()
        fingerprint, marker, recheck, *activity = row
        if isinstance(recheck, str):  # SQLite returns the raw value through a scalar subquery
            recheck = datetime.fromisoformat(recheck)
        if recheck is not None and recheck.tzinfo is None:
            recheck = recheck.replace(tzinfo=UTC)
        digest = hashlib.sha256(repr(tuple(str(a) for a in activity)).encode()).hexdigest()
        return Probe(fingerprint=fingerprint, marker=marker, recheck_at=recheck, activity=digest)

    async def next_due_after(self, user_id: int, moment: datetime) -> datetime | None:
        """The earliest due time of a current commitment after `moment`."""
        query = select(func.min(Memory.due_at)).where(
            Memory.user_id == user_id,
            Memory.kind == MemoryKind.COMMITMENT,
            Memory.valid_to.is_(None),
            Memory.due_at > moment,
        )
        async with self._db.engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return value

    async def unanswered_questions(
        self, user_id: int, *, newer_than: datetime, older_than: datetime | None = None
    ) -> list[Question]:
        """Per conversation: the last message, if it is the assistant's and asks something."""
        last_ids = (
            select(func.max(Message.id))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.user_id == user_id, Message.created_at >= newer_than)
            .group_by(Message.conversation_id)
        )
        query = select(Message.id, Message.conversation_id, Message.text, Message.created_at).where(
            Message.id.in_(last_ids), Message.role == "assistant"
        )
        if older_than is not None:
            query = query.where(Message.created_at <= older_than)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Question(message_id=i, conversation_id=c, text=t, at=at)
            for i, c, t, at in rows
            if t.rstrip().endswith(("?", "？"))
        ]

    async def due_commitments(self, user_id: int, *, until: datetime) -> list[DueCommitment]:
        """Current commitments due before `until`."""
        query = (
            select(Memory.id, Memory.content, Memory.due_at)
            .where(
                Memory.user_id == user_id,
                Memory.kind == MemoryKind.COMMITMENT,
                Memory.valid_to.is_(None),
                Memory.due_at.is_not(None),
                Memory.due_at <= until,
            )
            .order_by(Memory.due_at)
            .limit(20)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            DueCommitment(memory_id=i, content=c, due_at=d) for i, c, d in rows if d is not None
        ]

    async def commitments_to_plan(self, *, limit: int = 200) -> list[tuple[int, int, datetime]]:
        """(user, memory, due) of current commitments with a due time, for the follow-up planner."""
        query = (
            select(Memory.user_id, Memory.id, Memory.due_at)
            .where(
                Memory.kind == MemoryKind.COMMITMENT,
                Memory.valid_to.is_(None),
                Memory.due_at.is_not(None),
                ~select(Reminder.id).where(Reminder.memory_id == Memory.id).exists(),
            )
            .order_by(Memory.id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            return [(u, m, d) for u, m, d in (await conn.execute(query)).all() if d is not None]

    async def memory_current(self, user_id: int, memory_id: int) -> str | None:
        """The content of a memory if it is still current, else None (resolved or deleted)."""
        query = select(Memory.content).where(
            Memory.id == memory_id, Memory.user_id == user_id, Memory.valid_to.is_(None)
        )
        async with self._db.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def latest_mood(self, user_id: int, *, since: datetime) -> str | None:
        """The most recent mood memory since `since`."""
        query = (
            select(Memory.content)
            .where(
                Memory.user_id == user_id,
                Memory.kind == MemoryKind.MOOD,
                Memory.valid_to.is_(None),
                Memory.valid_from >= since,
            )
            .order_by(Memory.valid_from.desc())
            .limit(1)
        )
        async with self._db.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def users_without_job(self, kind: str, *, channels: frozenset[str]) -> list[int]:
        """Users reachable on `channels` that have no `<kind>:<user id>` scheduler job yet."""
        has_job = (
            select(literal(1))
            .select_from(_JOBS)
            .where(_JOBS.c.id == literal(f"{kind}:") + cast(ChannelIdentity.user_id, String))
        )
        query = (
            select(ChannelIdentity.user_id)
            .where(ChannelIdentity.channel.in_(channels), ~has_job.exists())
            .distinct()
            .limit(5000)
        )
        async with self._db.engine.connect() as conn:
            return [u for (u,) in (await conn.execute(query)).all()]

    async def last_user_text(self, user_id: int) -> str:
        """The user's most recent message (to answer in their language), or ""."""
        query = (
            select(Message.text)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.user_id == user_id, Message.role == "user")
            .order_by(Message.id.desc())
            .limit(1)
        )
        async with self._db.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none() or ""
