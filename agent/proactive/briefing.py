"""The morning briefing: today's events and the conflicts of today and tomorrow.

It is assembled without the model (a list is a list) and passes the gate like any unsolicited
message; with no events today it stays silent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.proactive.nudge import NudgeSender
from agent.runtime.replies import language_of, reply
from automation.calendar import CalendarService, find_conflicts
from automation.scheduler.engine import Firing
from memory.proactive import ProactiveStore
from memory.proactive_models import ProactiveDecision
from memory.signals import Signals
from memory.types import utcnow

log = logging.getLogger(__name__)

KIND = "briefing"


class Briefing:
    """Handles `briefing:<user id>` firings."""

    def __init__(
        self,
        *,
        calendar: CalendarService,
        store: ProactiveStore,
        signals: Signals,
        nudges: NudgeSender,
        zone_of: Callable[[int], Awaitable[ZoneInfo]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._calendar = calendar
        self._store = store
        self._signals = signals
        self._nudges = nudges
        self._zone_of = zone_of
        self._clock = clock

    async def __call__(self, firing: Firing) -> None:
        await self.brief(firing.ref)

    async def compose(
        self, user_id: int, now: datetime, tz: ZoneInfo, language: str = "en"
    ) -> str | None:
        """The briefing text, or None when today has no events and nothing conflicts."""
        local = now.astimezone(tz)
        start = datetime.combine(local.date(), time(0), tzinfo=tz)
        view = await self._calendar.events_between(start, start + timedelta(days=2), tz)
        today = [e for e in view.events if e.start < start + timedelta(days=1)]
        conflicts = find_conflicts(view.events)
        if not today and not conflicts:
            return None
        lang = language
        lines = [reply("briefing", lang)]
        for event in sorted(today, key=lambda e: e.start):
            when = "all day" if event.all_day else f"{event.start:%H:%M}–{event.end:%H:%M}"
            lines.append(f"• {when} {event.summary}")
        if conflicts:
            lines.append(reply("briefing_conflicts", lang))
            for c in conflicts:
                day_index = (c.start.astimezone(tz).date() - local.date()).days
                day = {0: ("today", "今天"), 1: ("tomorrow", "明天")}.get(day_index, ("", ""))
                lines.append(
                    "• "
                    + reply(
                        "conflict",
                        lang,
                        day=day[1] if lang == "zh" else day[0],
                        time=f"{c.start.astimezone(tz):%H:%M}",
                        first=c.first.summary,
                        second=c.second.summary,
                    )
                )
        if view.errors:
            lines.append("(" + "; ".join(view.errors) + ")")
        return "\n".join(lines)

    async def brief(self, user_id: int) -> str:
        """Compose, gate and queue the briefing; returns the decision."""
        now = self._clock()
        tz = await self._zone_of(user_id)
        language = language_of(await self._signals.last_user_text(user_id))
        text = await self.compose(user_id, now, tz, language)
        if text is None:
            await self._store.log(
                user_id=user_id,
                source=KIND,
                decision=ProactiveDecision.SILENT,
                reason="no events today",
            )
            return "silent"
        return await self._nudges.send(
            user_id=user_id,
            text=text,
            source=KIND,
            reason="morning briefing",
            refs=[f"briefing:{now.astimezone(tz).date()}"],
            now=now,
            tz=tz,
        )
