"""The proactivity engine of one process: scheduler, leader election, and routing of firings.

Every process can create and cancel reminders (the job store is shared); only the elected leader
fires jobs, reconciles reminders with jobs, plans follow-ups and keeps one heartbeat per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.llm import LLMClient
from agent.proactive.briefing import Briefing
from agent.proactive.firing import FiringPolicy, ReminderFirer, RunTask
from agent.proactive.gate import GatePolicy, NudgeGate
from agent.proactive.heartbeat import Heartbeat
from agent.proactive.nudge import NudgeSender
from agent.proactive.planner import Planner
from agent.settings import Settings, parse_clock, parse_hours
from agent.tool_setup import calendar_names
from automation.calendar import CalendarService, source_from_url
from automation.scheduler.engine import Firing, JobEngine
from automation.scheduler.leader import LeaderElection
from automation.scheduler.reminders import KIND as REMINDER
from automation.scheduler.reminders import ReminderService
from memory.db import Database, open_sync_engine
from memory.embeddings import Embedder
from memory.identities import IdentityStore
from memory.outbox import OutboxEntry
from memory.proactive import ProactiveStore
from memory.reminders import ReminderStore
from memory.signals import Signals
from memory.types import utcnow

log = logging.getLogger(__name__)

MAINTAIN_EVERY = 60.0
Handler = Callable[[Firing], Awaitable[None]]
Maintenance = Callable[[], Awaitable[None]]


class Proactivity:
    """Owns the scheduler for the runtime."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        push_channels: frozenset[str],
        deliver: Callable[[OutboxEntry], None],
        run_task: RunTask,
        llm: LLMClient,
        embedder: Embedder | None = None,
        clock: Callable[[], datetime] = utcnow,
        calendar_scope: Callable[[str], bool] | None = None,
        on_leadership: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_leadership = on_leadership
        """Told True when this process becomes the leader, False when it stands by."""
        self._identities = IdentityStore(db)
        self._zones: dict[int, ZoneInfo] = {}
        self.calendar = build_calendar(settings, allow=calendar_scope)
        self._sync_engine = open_sync_engine(db.url)
        self.engine = JobEngine(self._sync_engine, poll=settings.scheduler_poll)
        self.reminders = ReminderService(
            ReminderStore(db),
            self.engine,
            max_per_user=settings.reminders_max_per_user,
            clock=clock,
        )
        self.store = ProactiveStore(db)
        self.signals = Signals(db)
        self.gate = NudgeGate(
            self.store,
            GatePolicy(
                quiet=parse_hours(settings.quiet_hours) if settings.quiet_hours else None,
                budget=settings.nudge_budget,
                min_gap=timedelta(minutes=settings.nudge_min_gap_minutes),
            ),
            embedder,
        )
        self.firer = ReminderFirer(
            self.reminders,
            self.store,
            self.signals,
            self.gate,
            FiringPolicy(
                grace=timedelta(seconds=settings.scheduler_grace), push_channels=push_channels
            ),
            deliver=deliver,
            run_task=run_task,
            clock=clock,
        )
        nudges = NudgeSender(
            store=self.store,
            gate=self.gate,
            reminders=self.reminders.store,
            push_channels=push_channels,
            deliver=deliver,
        )
        self.heartbeat = Heartbeat(
            llm=llm,
            store=self.store,
            signals=self.signals,
            gate=self.gate,
            nudges=nudges,
            zone_of=self.zone_of,
            followup_after=timedelta(hours=settings.followup_after_hours),
            calendar=self.calendar,
            clock=clock,
        )
        self.briefing = (
            Briefing(
                calendar=self.calendar,
                store=self.store,
                signals=self.signals,
                nudges=nudges,
                zone_of=self.zone_of,
                clock=clock,
            )
            if self.calendar is not None
            else None
        )
        self.planner = Planner(
            signals=self.signals,
            reminders=self.reminders,
            engine=self.engine,
            zone_of=self.zone_of,
            push_channels=push_channels,
            heartbeat_minutes=settings.heartbeat_minutes,
            clock=clock,
        )
        self._handlers: dict[str, Handler] = {REMINDER: self.firer, "heartbeat": self.heartbeat}
        if self.briefing is not None:
            self._handlers["briefing"] = self.briefing
        self._maintenance: list[Maintenance] = [self._reconcile, self._plan]
        self._election = LeaderElection(
            db.url,
            poll=settings.scheduler_leader_poll,
            on_lead=self._lead,
            on_lose=self._stand_by,
        )
        self._maintainer: asyncio.Task[None] | None = None
        self._started = False

    async def zone_of(self, user_id: int) -> ZoneInfo:
        """The user's time zone (their own, else DADANG_TIMEZONE); cached per process."""
        zone = self._zones.get(user_id)
        if zone is None:
            user = await self._identities.get_user(user_id)
            zone = ZoneInfo((user.timezone if user else None) or self.settings.timezone)
            self._zones[user_id] = zone
        return zone

    async def _plan(self) -> None:
        if self.briefing is not None and self.settings.briefing_time:
            owner = await self._identities.owner()
            if owner is not None:
                self.planner.briefing_for(
                    owner.id, parse_clock(self.settings.briefing_time), self.settings.timezone
                )
        await self.planner()

    def route(self, kind: str, handler: Handler) -> None:
        """Send firings of jobs of `kind` to `handler`."""
        self._handlers[kind] = handler

    def maintain(self, task: Maintenance) -> None:
        """Run `task` on the leader at start and every minute (planners, reconcilers)."""
        self._maintenance.append(task)

    @property
    def leading(self) -> bool:
        """True while this process fires jobs."""
        return self.engine.leading

    async def start(self) -> None:
        """Open the job store (paused) and join the election if this process may lead."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.engine.start, loop, self._fire)
        self._started = True
        owner = await self._identities.owner()
        self.heartbeat.calendar_user = owner.id if owner else None
        if self.settings.scheduler:
            await self._election.start()

    async def stop(self) -> None:
        """Leave the election, stop the scheduler thread, finish firings in progress."""
        await self._election.stop()
        if self._started:
            await asyncio.to_thread(self.engine.shutdown)
            await self.engine.drain()
        self._sync_engine.dispose()
        if self.calendar is not None:
            await self.calendar.aclose()

    async def _fire(self, batch: list[Firing]) -> None:
        reminders = [f for f in batch if f.kind == REMINDER]
        if reminders:
            await self.firer.fire_many(reminders)
        others = [f for f in batch if f.kind != REMINDER]
        if others:
            await asyncio.gather(*(self._fire_other(f) for f in others))

    async def _fire_other(self, firing: Firing) -> None:
        handler = self._handlers.get(firing.kind)
        if handler is None:
            log.error("no handler for job %s; removing it", firing.job_id)
            await asyncio.to_thread(self.engine.remove, firing.kind, firing.ref)
            return
        try:
            await handler(firing)
        except Exception:
            log.exception("job %s failed", firing.job_id)

    async def _lead(self) -> None:
        try:
            await self._reconcile()  # before firing starts, so the two never race at start
        except Exception:
            log.exception("reconciling reminders with scheduler jobs failed; retrying later")
        self.engine.lead()
        self._maintainer = asyncio.create_task(self._maintain(), name="proactive-maintenance")
        if self._on_leadership is not None:
            self._on_leadership(True)

    async def _stand_by(self) -> None:
        if self._on_leadership is not None:
            self._on_leadership(False)
        self.engine.stand_by()
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
            self._maintainer = None

    async def _maintain(self) -> None:
        first = True
        while True:
            for task in self._maintenance[1:] if first else self._maintenance:
                try:
                    await task()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("proactive maintenance step failed; retrying next round")
            first = False
            await asyncio.sleep(MAINTAIN_EVERY)

    async def _reconcile(self) -> None:
        missing = await self.reminders.reconcile()
        if missing:
            log.info("re-created %d scheduler jobs for reminders", missing)
            self.engine.wakeup()


def build_calendar(
    settings: Settings, *, allow: Callable[[str], bool] | None = None
) -> CalendarService | None:
    """The owner's calendars from settings (None when none are configured or allowed).

    `allow` is the policy's calendar scope: a calendar left out is never read at all — not by
    the prompt, the tools, the heartbeat nor the briefing. Names are `calendar1`, `calendar2`, …
    in the order of DADANG_CALENDAR_URLS.
    """
    if not settings.calendar_urls:
        return None
    password = settings.calendar_password.get_secret_value() if settings.calendar_password else None
    sources = [
        source_from_url(url, name=name, username=settings.calendar_username, password=password)
        for name, url in zip(calendar_names(settings), settings.calendar_urls, strict=True)
    ]
    sources = [s for s in sources if allow is None or allow(s.name)]
    return CalendarService(sources) if sources else None
