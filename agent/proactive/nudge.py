"""Sending one unsolicited message: the gate, a reachable chat, then outbox and log together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.proactive.gate import NudgeGate
from memory.outbox import OutboxEntry
from memory.proactive import ProactiveStore
from memory.proactive_models import ProactiveDecision
from memory.reminders import ReminderStore


class NudgeSender:
    """Used by the heartbeat and the briefing (follow-ups defer instead of dropping)."""

    def __init__(
        self,
        *,
        store: ProactiveStore,
        gate: NudgeGate,
        reminders: ReminderStore,
        push_channels: frozenset[str],
        deliver: Callable[[OutboxEntry], None],
    ) -> None:
        self._store = store
        self._gate = gate
        self._reminders = reminders
        self._push = push_channels
        self._deliver = deliver

    async def send(
        self,
        *,
        user_id: int,
        text: str,
        source: str,
        reason: str,
        refs: list[str | None],
        now: datetime,
        tz: ZoneInfo,
        cost: tuple[int, int, int] = (0, 0, 0),
    ) -> str:
        """Send `text` if the gate allows; returns `sent` or `blocked` (logged either way)."""
        verdict = await self._gate.check(user_id, text, now=now, tz=tz)
        target = await self._reminders.destination(user_id, channels=self._push)
        if not verdict.allowed or target is None:
            calls, prompt, completion = cost
            await self._store.log(
                user_id=user_id,
                source=source,
                decision=ProactiveDecision.BLOCKED,
                reason=verdict.reason if target else "no reachable chat",
                text=text,
                ref=refs[0] if refs else None,
                model_calls=calls,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
            return "blocked"
        channel, chat_id = target
        entry = await self._store.record_sent(
            user_id=user_id,
            source=source,
            reason=reason,
            text=text,
            refs=refs,
            channel=channel,
            chat_id=chat_id,
            cost=cost,
        )
        self._deliver(entry)
        return "sent"
