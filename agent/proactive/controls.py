"""What the user does to proactive messages: buttons under reminders, /pause and /resume."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.proactive.service import Proactivity
from agent.runtime.replies import language_of, reply
from automation.scheduler.recurrence import wall_clock
from automation.scheduler.reminders import ReminderError, local_time
from connectors.base import Connector, InboundMessage
from memory.memories import NewMemory
from memory.proactive_models import ReminderStatus
from memory.service import MemoryService
from memory.types import utcnow

log = logging.getLogger(__name__)

_DATA = re.compile(r"^r:(\d+):(done|s10|s60|tom)$")
_FINISHED = frozenset({ReminderStatus.DONE, ReminderStatus.CANCELLED, ReminderStatus.MISSED})
_SNOOZE = {"s10": timedelta(minutes=10), "s60": timedelta(hours=1)}


class ProactiveControls:
    """Applies button presses and pause commands for one user at a time."""

    def __init__(
        self,
        proactive: Proactivity,
        memory: MemoryService,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._proactive = proactive
        self._memory = memory
        self._clock = clock

    async def press(
        self, message: InboundMessage, user_id: int, tz: ZoneInfo, connector: Connector
    ) -> None:
        """Carry out a reminder button and show the result in place of the buttons."""
        assert message.callback is not None
        callback = message.callback
        match = _DATA.match(callback.data)
        if match is None:
            await connector.answer_callback(callback.id)
            return
        reminder_id, action = int(match.group(1)), match.group(2)
        reminders = self._proactive.reminders
        record = await reminders.store.get(reminder_id, user_id=user_id)
        language = language_of(record.text if record else "", message.language_code)
        finished = record is not None and record.status in _FINISHED and action != "done"
        if record is None or finished:
            await connector.answer_callback(callback.id, reply("button_stale", language))
            return
        try:
            if action == "done":
                await reminders.complete(reminder_id, user_id=user_id)
                if record.memory_id is not None:
                    await self._close_commitment(user_id, record.memory_id)
                ack = reply("done_ack", language, text=record.text)
            else:
                until = self._snooze_until(action, tz)
                await reminders.snooze(
                    reminder_id, user_id=user_id, until=until, dedupe_key=f"cb:{callback.id}"
                )
                ack = reply(
                    "snoozed_ack",
                    language,
                    when=local_time(until, record.timezone),
                    text=record.text,
                )
        except ReminderError as exc:
            await connector.answer_callback(callback.id, str(exc)[:190])
            return
        if callback.message_id is not None:
            await connector.edit(message.chat_id, callback.message_id, ack)
        await connector.answer_callback(callback.id, ack[:190])

    def _snooze_until(self, action: str, tz: ZoneInfo) -> datetime:
        now = self._clock()
        if action in _SNOOZE:
            return now + _SNOOZE[action]
        local = now.astimezone(tz).replace(tzinfo=None)
        return wall_clock(local + timedelta(days=1), tz)  # same wall-clock time, DST-safe

    async def _close_commitment(self, user_id: int, memory_id: int) -> None:
        content = await self._proactive.signals.memory_current(user_id, memory_id)
        if content is None:
            return
        day = self._clock().date().isoformat()
        await self._memory.supersede(
            user_id, memory_id, NewMemory(content=f"{content} (done {day})", confidence=1.0)
        )

    async def pause(self, user_id: int, tz: ZoneInfo, language: str) -> str:
        """/pause: no unsolicited messages until the end of the local day."""
        local = self._clock().astimezone(tz)
        until = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
        await self._proactive.store.set_state(user_id, paused_until=until)
        return reply("paused", language, until=f"{until:%Y-%m-%d %H:%M}")

    async def resume(self, user_id: int, language: str) -> str:
        """/resume: lift a pause."""
        await self._proactive.store.set_state(user_id, paused_until=None)
        return reply("resumed", language)
