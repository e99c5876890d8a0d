"""Reminders as the tools, the CLI and the buttons use them: validate, store, schedule.

The database row is written first and the scheduler job second; if a crash falls between them,
`reconcile` (run by the leader at start and every minute) adds the missing job, so a reminder
the user was told about is never lost.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from automation.scheduler.engine import JobEngine
from automation.scheduler.recurrence import Schedule, ScheduleError, parse_schedule, zone
from memory.proactive_models import ReminderKind, ReminderOrigin, ReminderStatus
from memory.reminders import ReminderRecord, ReminderStore
from memory.types import utcnow

KIND = "reminder"
MAX_TEXT = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ReminderError(ValueError):
    """A request about reminders that cannot be carried out; the message is for the user."""


def clean_text(text: str) -> str:
    """The reminder text as stored: control characters removed, length bounded.

    Markup is kept verbatim; every channel escapes it when rendering.
    """
    cleaned = _CONTROL.sub("", text).strip()
    if not cleaned:
        raise ReminderError("the reminder needs a text")
    if len(cleaned) > MAX_TEXT:
        raise ReminderError(
            f"the reminder text is {len(cleaned)} characters; the limit is {MAX_TEXT}"
        )
    return cleaned


class ReminderService:
    """Create, change and cancel reminders, keeping the scheduler in step."""

    def __init__(
        self,
        store: ReminderStore,
        engine: JobEngine,
        *,
        max_per_user: int = 500,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.engine = engine
        self._max = max_per_user
        self._clock = clock

    @staticmethod
    def schedule_of(record: ReminderRecord) -> Schedule:
        """The schedule stored on a reminder."""
        return Schedule(
            timezone=record.timezone,
            at=record.at,
            cron=record.cron,
            rrule=record.rrule,
            start=record.created_at,
        )

    async def create(
        self,
        *,
        user_id: int,
        text: str,
        timezone: str,
        at: str | datetime | None = None,
        cron: str | None = None,
        rrule: str | None = None,
        kind: str = ReminderKind.MESSAGE,
        origin: str = ReminderOrigin.USER,
        dedupe_key: str | None = None,
        memory_id: int | None = None,
        channel: str | None = None,
        chat_id: str | None = None,
    ) -> tuple[ReminderRecord, bool]:
        """Validate and schedule; returns (reminder, created) — False for a repeated request.

        Raises:
            ReminderError: bad text, bad schedule, or the user's cap is reached.
        """
        body = clean_text(text)
        now = self._clock()
        try:
            schedule = parse_schedule(timezone=timezone, now=now, at=at, cron=cron, rrule=rrule)
        except ScheduleError as exc:
            raise ReminderError(str(exc)) from None
        if await self.store.count_active(user_id) >= self._max:
            raise ReminderError(
                f"you already have {self._max} active reminders, the most one person can have; "
                "cancel some first"
            )
        record, created = await self.store.create(
            user_id=user_id,
            text=body,
            timezone=timezone,
            at=schedule.at,
            cron=schedule.cron,
            rrule=schedule.rrule,
            next_run_at=schedule.next_after(now - timedelta(seconds=60))
            if schedule.at
            else schedule.next_after(now),
            kind=kind,
            origin=origin,
            dedupe_key=dedupe_key,
            memory_id=memory_id,
            channel=channel,
            chat_id=chat_id,
        )
        if created:
            await self._schedule(record)
        return record, created

    async def cancel(self, reminder_id: int, *, user_id: int | None = None) -> ReminderRecord:
        """Cancel a reminder (of `user_id` when given).

        Raises:
            ReminderError: no such reminder.
        """
        record = await self.store.change(
            reminder_id, user_id=user_id, status=ReminderStatus.CANCELLED, next_run_at=None
        )
        if record is None:
            raise ReminderError(f"there is no reminder #{reminder_id}")
        await asyncio.to_thread(self.engine.remove, KIND, reminder_id)
        return record

    async def complete(self, reminder_id: int, *, user_id: int) -> ReminderRecord:
        """Mark a fired one-off reminder done (the *Done* button); recurring ones stay active."""
        record = await self._owned(reminder_id, user_id)
        if record.recurring:
            return record
        changed = await self.store.change(
            reminder_id, user_id=user_id, status=ReminderStatus.DONE, next_run_at=None
        )
        await asyncio.to_thread(self.engine.remove, KIND, reminder_id)
        assert changed is not None
        return changed

    async def pause(self, reminder_id: int, *, user_id: int | None = None) -> ReminderRecord:
        """Keep the reminder but stop firing it."""
        record = await self.store.change(
            reminder_id, user_id=user_id, status=ReminderStatus.PAUSED, next_run_at=None
        )
        if record is None:
            raise ReminderError(f"there is no reminder #{reminder_id}")
        await asyncio.to_thread(self.engine.remove, KIND, reminder_id)
        return record

    async def resume(self, reminder_id: int, *, user_id: int | None = None) -> ReminderRecord:
        """Fire a paused reminder again from now on.

        Raises:
            ReminderError: no such reminder, or a one-off whose time passed while paused.
        """
        record = await self.store.get(reminder_id, user_id=user_id)
        if record is None:
            raise ReminderError(f"there is no reminder #{reminder_id}")
        nxt = self.schedule_of(record).next_after(self._clock())
        if nxt is None:
            raise ReminderError(f"reminder #{reminder_id} was due while paused; set a new time")
        changed = await self.store.change(
            reminder_id, status=ReminderStatus.ACTIVE, next_run_at=nxt
        )
        assert changed is not None
        await self._schedule(changed)
        return changed

    async def reschedule(
        self,
        reminder_id: int,
        *,
        user_id: int | None = None,
        at: str | datetime | None = None,
        cron: str | None = None,
        rrule: str | None = None,
        text: str | None = None,
    ) -> ReminderRecord:
        """Move a reminder to a new time or recurrence, and/or change its text.

        Raises:
            ReminderError: no such reminder, or the new schedule is invalid.
        """
        record = await self.store.get(reminder_id, user_id=user_id)
        if record is None:
            raise ReminderError(f"there is no reminder #{reminder_id}")
        values: dict[str, Any] = {}
        if text is not None:
            values["text"] = clean_text(text)
        if at or cron or rrule:
            now = self._clock()
            try:
                schedule = parse_schedule(
                    timezone=record.timezone, now=now, at=at, cron=cron, rrule=rrule
                )
            except ScheduleError as exc:
                raise ReminderError(str(exc)) from None
            values.update(
                at=schedule.at,
                cron=schedule.cron,
                rrule=schedule.rrule,
                status=ReminderStatus.ACTIVE,
                next_run_at=schedule.next_after(now - timedelta(seconds=60)),
            )
        changed = await self.store.change(reminder_id, **values)
        assert changed is not None
        if changed.status == ReminderStatus.ACTIVE:
            await self._schedule(changed)
        return changed

    async def snooze(
        self, reminder_id: int, *, user_id: int, until: datetime, dedupe_key: str
    ) -> ReminderRecord:
        """Remind again at `until` with the same text (a new one-off reminder).

        A snoozed one-off is done; a recurring one keeps its own schedule.
        """
        record = await self._owned(reminder_id, user_id)
        snoozed, _ = await self.store.create(
            user_id=user_id,
            text=record.text,
            timezone=record.timezone,
            at=until,
            next_run_at=until,
            kind=record.kind,
            origin=ReminderOrigin.SNOOZE,
            dedupe_key=dedupe_key,
            channel=record.channel,
            chat_id=record.chat_id,
        )
        if snoozed.status == ReminderStatus.ACTIVE:
            await self._schedule(snoozed)
        if not record.recurring and record.status != ReminderStatus.DONE:
            await self.store.change(
                reminder_id, user_id=user_id, status=ReminderStatus.DONE, next_run_at=None
            )
            await asyncio.to_thread(self.engine.remove, KIND, reminder_id)
        return snoozed

    async def reconcile(self) -> int:
        """Give every active reminder its scheduler job; returns how many were missing."""
        missing = await self.store.without_job()
        for record in missing:
            await self._schedule(record)
        return len(missing)

    async def _owned(self, reminder_id: int, user_id: int) -> ReminderRecord:
        record = await self.store.get(reminder_id, user_id=user_id)
        if record is None:
            raise ReminderError(f"there is no reminder #{reminder_id}")
        return record

    async def _schedule(self, record: ReminderRecord) -> None:
        schedule = self.schedule_of(record)
        trigger = schedule.trigger()
        # A one-off whose time is already past is still added: it fires at once, marked late.
        nxt = record.next_run_at or record.at
        await asyncio.to_thread(self.engine.put, KIND, record.id, trigger, next_run_time=nxt)


def local_time(moment: datetime, timezone: str) -> str:
    """`moment` as the user reads it: 2026-11-27 15:00 (Fri)."""
    return moment.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M (%a)")
