"""Leader-side planning: follow-ups for commitments, one heartbeat per user, the briefing job."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from automation.scheduler.engine import JobEngine
from automation.scheduler.recurrence import wall_clock
from automation.scheduler.reminders import ReminderError, ReminderService
from memory.proactive_models import ReminderOrigin
from memory.signals import Signals
from memory.types import utcnow

log = logging.getLogger(__name__)

FOLLOWUP_HOUR = time(9, 0)
"""Commitments are asked about on the morning of the day they are due."""


def followup_time(due: datetime, tz: ZoneInfo) -> datetime:
    """09:00 local on the due day, or an hour before the due time if that is earlier."""
    local = due.astimezone(tz)
    morning = wall_clock(datetime.combine(local.date(), FOLLOWUP_HOUR), tz)
    return min(morning, due - timedelta(hours=1)) if local.time() > time(0) else morning


class Planner:
    """Runs on the leader every minute."""

    def __init__(
        self,
        *,
        signals: Signals,
        reminders: ReminderService,
        engine: JobEngine,
        zone_of: Callable[[int], Awaitable[ZoneInfo]],
        push_channels: frozenset[str],
        heartbeat_minutes: int,
        briefing: tuple[int, time, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._signals = signals
        self._reminders = reminders
        self._engine = engine
        self._zone_of = zone_of
        self._push = push_channels
        self._heartbeat = heartbeat_minutes
        self._briefing = briefing
        self._briefing_set = False
        self._clock = clock

    async def __call__(self) -> None:
        await self.plan_followups()
        await self.ensure_heartbeats()
        await self.ensure_briefing()

    async def plan_followups(self) -> int:
        """A follow-up reminder for each open commitment with a due time (once per commitment).

        Revoked people's commitments wait until they are re-admitted (`commitments_to_plan`).
        """
        now = self._clock()
        planned = 0
        for user_id, memory_id, due in await self._signals.commitments_to_plan():
            if due < now - timedelta(days=1):
                continue  # long past: asking now would be noise
            tz = await self._zone_of(user_id)
            at = max(followup_time(due, tz), now + timedelta(minutes=1))
            content = await self._signals.memory_current(user_id, memory_id)
            if content is None:
                continue
            try:
                await self._reminders.create(
                    user_id=user_id,
                    text=content[:1000],
                    timezone=tz.key,
                    at=at,
                    origin=ReminderOrigin.FOLLOWUP,
                    dedupe_key=f"followup:memory:{memory_id}",
                    memory_id=memory_id,
                )
                planned += 1
            except ReminderError as exc:
                log.info("no follow-up for memory %s: %s", memory_id, exc)
        return planned

    async def ensure_heartbeats(self) -> int:
        """One heartbeat job per reachable user, spread over the interval; returns how many
        were added. Jobs of users no longer reachable (revoked) are removed."""
        if self._heartbeat <= 0:
            return 0
        for user_id in await self._signals.unreachable_with_job("heartbeat", channels=self._push):
            await asyncio.to_thread(self._engine.remove, "heartbeat", user_id)
        users = await self._signals.users_without_job("heartbeat", channels=self._push)
        period = self._heartbeat * 60
        for user_id in users:
            # Spread users over the period so 10,000 heartbeats do not fire in the same second.
            offset = int(hashlib.sha256(str(user_id).encode()).hexdigest(), 16) % period
            start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
            trigger = IntervalTrigger(minutes=self._heartbeat, start_date=start)
            await asyncio.to_thread(self._engine.put, "heartbeat", user_id, trigger)
        return len(users)

    def briefing_for(self, user_id: int, at: time, zone: str) -> None:
        """Schedule the morning briefing for `user_id` (set once the owner is known)."""
        if self._briefing != (user_id, at, zone):
            self._briefing = (user_id, at, zone)
            self._briefing_set = False

    async def ensure_briefing(self) -> None:
        """The owner's morning briefing job, when a calendar and a briefing time are set."""
        if self._briefing is None or self._briefing_set:
            return
        user_id, at, zone = self._briefing
        trigger = CronTrigger(hour=at.hour, minute=at.minute, timezone=ZoneInfo(zone))
        await asyncio.to_thread(self._engine.put, "briefing", user_id, trigger)
        self._briefing_set = True
