"""The proactive log and per-user proactive state (pause, heartbeat fingerprint)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from memory.audit import AuditLog
from memory.db import Database
from memory.models import OutboxItem, OutboxStatus
from memory.outbox import OutboxEntry
from memory.proactive_models import ProactiveDecision, ProactiveLogEntry, ProactiveState
from memory.types import utcnow


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
        self._audit = AuditLog(db)

    async def _audited(
        self, conn: AsyncConnection, *, user_id: int, source: str, detail: dict[str, object]
    ) -> None:
        # Every decision to speak up or stay silent is part of the trail, in its transaction.
        await self._audit.append(
            actor="agent",
            action="proactive_decision",
            user_id=user_id,
            target=source,
            detail=detail,
            conn=conn,
        )

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
            entry_id = int((await conn.execute(statement)).scalar_one())
            await self._audited(
                conn,
                user_id=user_id,
                source=source,
                detail={
                    "decision": decision,
                    "reason": reason[:500],
                    "ref": ref,
                    "text": (text or "")[:500],
                    "model_calls": model_calls,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                },
            )
            return entry_id

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
            await self._audited(
                conn,
                user_id=user_id,
                source=source,
                detail={
                    "decision": ProactiveDecision.SENT.value,
                    "reason": reason[:500],
                    "refs": refs,
                    "text": text[:500],
                    "outbox_id": outbox_id,
                    "model_calls": calls,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                },
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
