"""What the proactive side reads about a user: activity, open questions, due commitments, mood.

Kept apart from `memory.proactive` (the log and state the proactive side writes): these are
read-only views over messages, memories, identities and jobs, shaped for the heartbeat, the
planner and the firer. Nothing is sent unasked over an identity the owner revoked (`Reach`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, cast, column, func, literal, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from memory.db import Database
from memory.models import ChannelIdentity, Conversation, Memory, MemoryKind, Message, User
from memory.proactive_models import ProactiveDecision, ProactiveLogEntry, ProactiveState, Reminder

# APScheduler's table, named without importing APScheduler into the memory layer.
_JOBS = table("apscheduler_jobs", column("id", String))


@dataclass(frozen=True, kw_only=True)
class Probe:
    """What an idle heartbeat needs: the stored state and the user's activity now."""

    fingerprint: str | None
    marker: str | None
    recheck_at: datetime | None
    admitted: bool
    """The user has an identity the owner has not revoked; without one nothing is sent unasked."""
    activity: str
    """Hash of the latest message id, the memories' count and last change, the last nudge id."""


@dataclass(frozen=True, kw_only=True)
class Reach:
    """On which channels a user may be contacted unasked, read from their identities."""

    active: frozenset[str] = frozenset()
    """Channels where they have an identity that is not revoked."""
    revoked: frozenset[str] = frozenset()
    """Channels where the owner revoked their identity (`dadang pair revoke`)."""

    def allows(self, channel: str) -> bool:
        """True with an active identity on `channel`, or with an active identity elsewhere and
        none revoked on `channel` (the owner, reached through `telegram_allowed_users` before
        their first Telegram message). A user without an active identity is reached nowhere.
        """
        return channel in self.active or (bool(self.active) and channel not in self.revoked)


async def reach_of(conn: AsyncConnection, user_ids: Collection[int]) -> dict[int, Reach]:
    """The `Reach` of each of `user_ids`, in one query."""
    active: dict[int, set[str]] = {u: set() for u in user_ids}
    revoked: dict[int, set[str]] = {u: set() for u in user_ids}
    if user_ids:
        query = select(
            ChannelIdentity.user_id, ChannelIdentity.channel, ChannelIdentity.revoked_at
        ).where(ChannelIdentity.user_id.in_(list(user_ids)))
        for user_id, channel, revoked_at in (await conn.execute(query)).all():
            (active if revoked_at is None else revoked)[user_id].add(channel)
    return {u: Reach(active=frozenset(active[u]), revoked=frozenset(revoked[u])) for u in user_ids}


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


class Signals:
    """Read-only queries about one user's situation, always scoped by user."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        admitted = (
            select(func.count())
            .where(ChannelIdentity.user_id == user_id, ChannelIdentity.revoked_at.is_(None))
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
            admitted,
            last_message,
            memory_count,
            memory_changed,
            last_nudge,
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).one()
        fingerprint, marker, recheck, identities, *activity = row
        if isinstance(recheck, str):  # SQLite returns the raw value through a scalar subquery
            recheck = datetime.fromisoformat(recheck)
        if recheck is not None and recheck.tzinfo is None:
            recheck = recheck.replace(tzinfo=UTC)
        digest = hashlib.sha256(repr(tuple(str(a) for a in activity)).encode()).hexdigest()
        return Probe(
            fingerprint=fingerprint,
            marker=marker,
            recheck_at=recheck,
            admitted=bool(identities),
            activity=digest,
        )

    async def reach(self, user_ids: Collection[int]) -> dict[int, Reach]:
        """Where each of `user_ids` may be contacted unasked (see `Reach`)."""
        async with self._db.engine.connect() as conn:
            return await reach_of(conn, user_ids)

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
        """(user, memory, due) of current commitments with a due time, for the follow-up planner.

        Only for users with an identity that is not revoked: a revoked person's commitments
        are planned once they are re-admitted (if still due).
        """
        admitted = select(ChannelIdentity.id).where(
            ChannelIdentity.user_id == Memory.user_id, ChannelIdentity.revoked_at.is_(None)
        )
        query = (
            select(Memory.user_id, Memory.id, Memory.due_at)
            .where(
                Memory.kind == MemoryKind.COMMITMENT,
                Memory.valid_to.is_(None),
                Memory.due_at.is_not(None),
                ~select(Reminder.id).where(Reminder.memory_id == Memory.id).exists(),
                admitted.exists(),
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
        """Users reachable on `channels` that have no `<kind>:<user id>` scheduler job yet.

        Reachable means an identity on one of `channels` that the owner has not revoked.
        """
        has_job = (
            select(literal(1))
            .select_from(_JOBS)
            .where(_JOBS.c.id == literal(f"{kind}:") + cast(ChannelIdentity.user_id, String))
        )
        query = (
            select(ChannelIdentity.user_id)
            .where(
                ChannelIdentity.channel.in_(channels),
                ChannelIdentity.revoked_at.is_(None),
                ~has_job.exists(),
            )
            .distinct()
            .limit(5000)
        )
        async with self._db.engine.connect() as conn:
            return [u for (u,) in (await conn.execute(query)).all()]

    async def unreachable_with_job(self, kind: str, *, channels: frozenset[str]) -> list[int]:
        """Users with a `<kind>:<user id>` job but no active identity on `channels` any more.

        The complement of `users_without_job`: whose job to remove after a revoke (a re-admitted
        user is found by `users_without_job` again).
        """
        has_job = (
            select(literal(1))
            .select_from(_JOBS)
            .where(_JOBS.c.id == literal(f"{kind}:") + cast(User.id, String))
        )
        reachable = select(literal(1)).where(
            ChannelIdentity.user_id == User.id,
            ChannelIdentity.channel.in_(channels),
            ChannelIdentity.revoked_at.is_(None),
        )
        query = select(User.id).where(has_job.exists(), ~reachable.exists()).limit(5000)
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
