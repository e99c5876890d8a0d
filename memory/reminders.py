"""Reminders and their firings, always scoped by user.

Firing is exactly-once per (job, scheduled time): the `job_runs` row, the reminder's new state and
the outbox row commit together, so a repeated firing (crash after the commit, two leaders for a
moment) finds the run already recorded and sends nothing.

A firing for a person whose access the owner revoked is recorded with the outcome `revoked` and
sends nothing; the reminder itself stays (see `agent.proactive.firing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal,
    select,
    table,
    update,
)
from sqlalchemy.exc import IntegrityError

from memory.db import Database
from memory.models import ChannelIdentity, Conversation, Message, OutboxItem, OutboxStatus
from memory.outbox import OutboxEntry
from memory.proactive_models import JobRun, Reminder, ReminderStatus
from memory.signals import reach_of
from memory.types import UTCDateTime, utcnow

JOB_PREFIX = "reminder:"
REVOKED = "revoked"
"""`job_runs.outcome` of a firing held back because the person's access was revoked."""
# APScheduler's table, named without importing APScheduler into the memory layer.
_JOBS = table("apscheduler_jobs", column("id", String))
_COLUMNS = (
    Reminder.id,
    Reminder.user_id,
    Reminder.kind,
    Reminder.text,
    Reminder.at,
    Reminder.cron,
    Reminder.rrule,
    Reminder.timezone,
    Reminder.status,
    Reminder.next_run_at,
    Reminder.origin,
    Reminder.memory_id,
    Reminder.channel,
    Reminder.chat_id,
    Reminder.fired_count,
    Reminder.created_at,
    Reminder.updated_at,
)


@dataclass(frozen=True, kw_only=True)
class ReminderRecord:
    """A reminder as the rest of the code sees it."""

    id: int
    user_id: int
    kind: str
    text: str
    at: datetime | None
    cron: str | None
    rrule: str | None
    timezone: str
    status: str
    next_run_at: datetime | None
    origin: str
    memory_id: int | None
    channel: str | None
    chat_id: str | None
    fired_count: int
    created_at: datetime
    updated_at: datetime

    @property
    def recurring(self) -> bool:
        """True for cron and RRULE reminders."""
        return self.at is None


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What a firing sends, and where."""

    channel: str
    chat_id: str
    text: str
    buttons: list[list[tuple[str, str]]]


@dataclass(frozen=True, kw_only=True)
class HeldRun:
    """A firing held back while the person was revoked, as `dadang pair approve` reports it."""

    reminder_id: int
    text: str
    run_time: datetime
    status: str
    """The reminder's status now: `missed` for a one-off, `active` for a recurring one."""


@dataclass(frozen=True, kw_only=True)
class FirePlan:
    """One firing of a message reminder, decided and ready to be written."""

    record: ReminderRecord
    job_id: str
    run_time: datetime
    outcome: str
    status: str
    next_run_at: datetime | None
    delivery: Delivery


class _Stale(Exception):
    """The reminder changed between reading and firing it."""


class ReminderStore:
    """Reads and writes reminders."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        user_id: int,
        text: str,
        timezone: str,
        next_run_at: datetime | None,
        at: datetime | None = None,
        cron: str | None = None,
        rrule: str | None = None,
        kind: str = "message",
        origin: str = "user",
        dedupe_key: str | None = None,
        memory_id: int | None = None,
        channel: str | None = None,
        chat_id: str | None = None,
    ) -> tuple[ReminderRecord, bool]:
        """Insert a reminder; with a `dedupe_key` already used, return that one and False."""
        now = utcnow()
        values = {
            "user_id": user_id,
            "kind": kind,
            "text": text,
            "at": at,
            "cron": cron,
            "rrule": rrule,
            "timezone": timezone,
            "status": ReminderStatus.ACTIVE,
            "next_run_at": next_run_at,
            "origin": origin,
            "dedupe_key": dedupe_key,
            "memory_id": memory_id,
            "channel": channel,
            "chat_id": chat_id,
            "fired_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.engine.begin() as conn:
                row = (
                    await conn.execute(insert(Reminder).values(**values).returning(*_COLUMNS))
                ).one()
        except IntegrityError:
            if dedupe_key is None:
                raise
            async with self._db.engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(*_COLUMNS).where(
                            Reminder.user_id == user_id, Reminder.dedupe_key == dedupe_key
                        )
                    )
                ).one()
            return ReminderRecord(**row._asdict()), False
        return ReminderRecord(**row._asdict()), True

    async def get(self, reminder_id: int, *, user_id: int | None = None) -> ReminderRecord | None:
        """One reminder; with `user_id`, only if that user owns it."""
        query = select(*_COLUMNS).where(Reminder.id == reminder_id)
        if user_id is not None:
            query = query.where(Reminder.user_id == user_id)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return ReminderRecord(**row._asdict()) if row else None

    async def listing(
        self,
        *,
        user_id: int | None = None,
        statuses: tuple[str, ...] = (ReminderStatus.ACTIVE, ReminderStatus.PAUSED),
        limit: int = 100,
    ) -> list[ReminderRecord]:
        """Reminders by next firing time (all users when `user_id` is None: the CLI)."""
        query = select(*_COLUMNS).where(Reminder.status.in_(statuses))
        if user_id is not None:
            query = query.where(Reminder.user_id == user_id)
        query = query.order_by(Reminder.next_run_at.is_(None), Reminder.next_run_at, Reminder.id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [ReminderRecord(**r._asdict()) for r in rows]

    async def count_active(self, user_id: int) -> int:
        """Active and paused reminders of a user, for the per-user cap."""
        query = select(func.count()).where(
            Reminder.user_id == user_id,
            Reminder.status.in_((ReminderStatus.ACTIVE, ReminderStatus.PAUSED)),
        )
        async with self._db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def change(
        self, reminder_id: int, *, user_id: int | None = None, **values: Any
    ) -> ReminderRecord | None:
        """Update columns of a reminder (owned by `user_id` when given); None if not found."""
        statement = update(Reminder).where(Reminder.id == reminder_id)
        if user_id is not None:
            statement = statement.where(Reminder.user_id == user_id)
        statement = statement.values(updated_at=utcnow(), **values).returning(*_COLUMNS)
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return ReminderRecord(**row._asdict()) if row else None

    async def fire(
        self,
        record: ReminderRecord,
        *,
        job_id: str,
        run_time: datetime,
        now: datetime,
        outcome: str,
        status: str,
        next_run_at: datetime | None,
        delivery: Delivery | None,
    ) -> tuple[bool, OutboxEntry | None]:
        """Record one firing and queue its message, atomically.

        Returns (fired, outbox entry): fired is False when this run was already recorded or the
        reminder changed since it was read (then nothing is written).
        """
        late = max(0.0, (now - run_time).total_seconds())
        try:
            return await self._fire(
                record, job_id, run_time, now, late, outcome, status, next_run_at, delivery
            )
        except _Stale:
            return False, None

    async def _fire(
        self,
        record: ReminderRecord,
        job_id: str,
        run_time: datetime,
        now: datetime,
        late: float,
        outcome: str,
        status: str,
        next_run_at: datetime | None,
        delivery: Delivery | None,
    ) -> tuple[bool, OutboxEntry | None]:
        async with self._db.engine.begin() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(JobRun).values(
                            job_id=job_id,
                            run_time=run_time,
                            fired_at=now,
                            late_seconds=late,
                            outcome=outcome,
                        )
                    )
            except IntegrityError:
                return False, None
            changed = await conn.execute(
                update(Reminder)
                .where(Reminder.id == record.id, Reminder.updated_at == record.updated_at)
                .values(
                    status=status,
                    next_run_at=next_run_at,
                    fired_count=Reminder.fired_count + 1,
                    last_fired_at=now,
                    updated_at=now,
                )
            )
            if changed.rowcount != 1:
                raise _Stale  # cancelled or edited meanwhile: roll back the run record too
            if delivery is None:
                return True, None
            buttons = json.dumps(delivery.buttons, ensure_ascii=False) if delivery.buttons else None
            outbox_id = (
                await conn.execute(
                    insert(OutboxItem)
                    .values(
                        channel=delivery.channel,
                        chat_id=delivery.chat_id,
                        text=delivery.text,
                        status=OutboxStatus.SENDING,
                        parts_sent=0,
                        attempts=1,
                        next_attempt_at=now,
                        created_at=now,
                        buttons=buttons,
                    )
                    .returning(OutboxItem.id)
                )
            ).scalar_one()
            await conn.execute(
                update(JobRun)
                .where(JobRun.job_id == job_id, JobRun.run_time == run_time)
                .values(outbox_id=outbox_id)
            )
        return True, OutboxEntry(
            id=outbox_id,
            channel=delivery.channel,
            chat_id=delivery.chat_id,
            text=delivery.text,
            parts_sent=0,
            attempts=1,
            reply_to_channel_message_id=None,
            channel_message_ids=[],
            buttons=delivery.buttons,
        )

    async def get_many(self, ids: list[int]) -> dict[int, ReminderRecord]:
        """Reminders by id (one query for a burst of firings)."""
        if not ids:
            return {}
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(select(*_COLUMNS).where(Reminder.id.in_(ids)))).all()
        return {r.id: ReminderRecord(**r._asdict()) for r in rows}

    async def fire_many(self, plans: list[FirePlan], *, now: datetime) -> list[OutboxEntry]:
        """`fire` for a burst: one transaction and a handful of statements for all of them.

        Runs already recorded are left out. The reminder update only applies to reminders still
        active, so a cancel that lands in the same instant is not undone (its message may still
        go out: the firing had already begun). If another leader recorded one of these runs at
        the same moment, the whole batch falls back to `fire`, one by one.
        """
        if not plans:
            return []
        job_ids = list({p.job_id for p in plans})
        try:
            async with self._db.engine.begin() as conn:
                done = {
                    (j, t)
                    for j, t in (
                        await conn.execute(
                            select(JobRun.job_id, JobRun.run_time).where(JobRun.job_id.in_(job_ids))
                        )
                    ).all()
                }
                fresh = [p for p in plans if (p.job_id, p.run_time) not in done]
                if not fresh:
                    return []
                await conn.execute(
                    update(Reminder)
                    .where(
                        Reminder.id == bindparam("b_id"),
                        Reminder.status == ReminderStatus.ACTIVE,
                    )
                    .values(
                        status=bindparam("b_status"),
                        next_run_at=bindparam("b_next", type_=UTCDateTime()),
                        fired_count=Reminder.fired_count + 1,
                        last_fired_at=now,
                        updated_at=now,
                    ),
                    [
                        {"b_id": p.record.id, "b_status": p.status, "b_next": p.next_run_at}
                        for p in fresh
                    ],
                )
                rows = await conn.execute(
                    insert(OutboxItem).returning(OutboxItem.id, sort_by_parameter_order=True),
                    [
                        {
                            "channel": p.delivery.channel,
                            "chat_id": p.delivery.chat_id,
                            "text": p.delivery.text,
                            "status": OutboxStatus.SENDING,
                            "parts_sent": 0,
                            "attempts": 1,
                            "next_attempt_at": now,
                            "created_at": now,
                            "buttons": json.dumps(p.delivery.buttons, ensure_ascii=False)
                            if p.delivery.buttons
                            else None,
                        }
                        for p in fresh
                    ],
                )
                ids = [i for (i,) in rows.all()]
                await conn.execute(
                    insert(JobRun),
                    [
                        {
                            "job_id": p.job_id,
                            "run_time": p.run_time,
                            "fired_at": now,
                            "late_seconds": max(0.0, (now - p.run_time).total_seconds()),
                            "outcome": p.outcome,
                            "outbox_id": outbox_id,
                        }
                        for p, outbox_id in zip(fresh, ids, strict=True)
                    ],
                )
        except IntegrityError:
            entries = []
            for p in plans:
                _, entry = await self.fire(
                    p.record,
                    job_id=p.job_id,
                    run_time=p.run_time,
                    now=now,
                    outcome=p.outcome,
                    status=p.status,
                    next_run_at=p.next_run_at,
                    delivery=p.delivery,
                )
                if entry is not None:
                    entries.append(entry)
            return entries
        return [
            OutboxEntry(
                id=i,
                channel=p.delivery.channel,
                chat_id=p.delivery.chat_id,
                text=p.delivery.text,
                parts_sent=0,
                attempts=1,
                reply_to_channel_message_id=None,
                channel_message_ids=[],
                buttons=p.delivery.buttons,
            )
            for i, p in zip(ids, fresh, strict=True)
        ]

    async def record_run(self, *, job_id: str, run_time: datetime, outcome: str) -> bool:
        """Record a firing that sent nothing (skipped); False if it was already recorded."""
        now = utcnow()
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    insert(JobRun).values(
                        job_id=job_id,
                        run_time=run_time,
                        fired_at=now,
                        late_seconds=max(0.0, (now - run_time).total_seconds()),
                        outcome=outcome,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def held_since(self, user_id: int, since: datetime) -> list[HeldRun]:
        """The user's firings recorded as `revoked` since `since`, oldest first."""
        query = (
            select(Reminder.id, Reminder.text, JobRun.run_time, Reminder.status)
            .join(JobRun, JobRun.job_id == literal(JOB_PREFIX) + cast(Reminder.id, String))
            .where(
                Reminder.user_id == user_id,
                JobRun.outcome == REVOKED,
                JobRun.fired_at >= since,
            )
            .order_by(JobRun.run_time, Reminder.id)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [HeldRun(reminder_id=i, text=t, run_time=r, status=s) for i, t, r, s in rows]

    async def runs(self, job_id: str) -> list[tuple[datetime, str, float]]:
        """(scheduled time, outcome, seconds late) of a job's firings, oldest first."""
        query = (
            select(JobRun.run_time, JobRun.outcome, JobRun.late_seconds)
            .where(JobRun.job_id == job_id)
            .order_by(JobRun.run_time)
        )
        async with self._db.engine.connect() as conn:
            return [(t, o, s) for t, o, s in (await conn.execute(query)).all()]

    async def without_job(self, *, limit: int = 1000) -> list[ReminderRecord]:
        """Active reminders that have no scheduler job (a crash between the two writes)."""
        jobs = (
            select(literal(1))
            .select_from(_JOBS)
            .where(_JOBS.c.id == literal(JOB_PREFIX) + cast(Reminder.id, String))
        )
        query = (
            select(*_COLUMNS)
            .where(Reminder.status == ReminderStatus.ACTIVE, ~jobs.exists())
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ReminderRecord(**r._asdict()) for r in rows]

    async def destination(
        self, user_id: int, *, channels: frozenset[str]
    ) -> tuple[str, str] | None:
        """Where to reach a user unasked: the chat they last wrote from, on a push channel.

        Channels where the owner revoked the user's identity are left out (`Reach.allows`).
        """
        async with self._db.engine.connect() as conn:
            reach = (await reach_of(conn, [user_id]))[user_id]
            channels = frozenset(c for c in channels if reach.allows(c))
            if not channels:
                return None
            latest = (
                select(Conversation.channel, Conversation.chat_id)
                .join(Message, Message.conversation_id == Conversation.id)
                .where(
                    Conversation.user_id == user_id,
                    Conversation.channel.in_(channels),
                    Message.role == "user",
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
            identity = (
                select(ChannelIdentity.channel, ChannelIdentity.external_id)
                .where(
                    and_(
                        ChannelIdentity.user_id == user_id,
                        ChannelIdentity.channel == "telegram",
                        ChannelIdentity.revoked_at.is_(None),
                    )
                )
                .limit(1)
            )
            row = (await conn.execute(latest)).first()
            if row is None and "telegram" in channels:
                # A Telegram private chat's id is the user's id: reachable before they wrote.
                row = (await conn.execute(identity)).first()
        return (row[0], row[1]) if row else None
