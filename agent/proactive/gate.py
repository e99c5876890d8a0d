"""The gate every unsolicited message passes: pause, quiet hours, budget, gap, repetition.

Reminders the user set explicitly skip the gate — the user asked for them at that time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from memory import segment
from memory.embeddings import Embedder
from memory.proactive import ProactiveStore

REPEAT_COSINE = 0.85
"""Embedding similarity above which a nudge counts as a repeat of a recent one."""
REPEAT_OVERLAP = 0.7
"""Word overlap (Jaccard) that counts as a repeat when no embedder is available."""
REPEAT_WINDOW = timedelta(days=3)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether a nudge may go now; if not, why, and when it could (None: never)."""

    allowed: bool
    reason: str
    retry_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class GatePolicy:
    """The limits, from settings."""

    quiet: tuple[time, time] | None
    budget: int
    min_gap: timedelta


class NudgeGate:
    """Decides whether an unsolicited message may be sent to a user now."""

    def __init__(
        self, store: ProactiveStore, policy: GatePolicy, embedder: Embedder | None = None
    ) -> None:
        self._store = store
        self._policy = policy
        self._embedder = embedder

    def quiet_now(self, now: datetime, tz: ZoneInfo) -> datetime | None:
        """When quiet hours end, if `now` is inside them (None otherwise)."""
        if self._policy.quiet is None:
            return None
        start, end = self._policy.quiet
        local = now.astimezone(tz)
        clock = local.time().replace(tzinfo=None)
        inside = start <= clock < end if start < end else clock >= start or clock < end
        if not inside:
            return None
        day = local.date() if clock < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=tz)

    async def check(self, user_id: int, text: str, *, now: datetime, tz: ZoneInfo) -> Verdict:
        """Apply pause, quiet hours, daily budget, minimum gap and the repeat check, in order."""
        state = await self._store.state(user_id)
        if state.paused_until is not None and state.paused_until > now:
            return Verdict(allowed=False, reason="paused by the user", retry_at=state.paused_until)
        quiet_end = self.quiet_now(now, tz)
        if quiet_end is not None:
            return Verdict(allowed=False, reason="quiet hours", retry_at=quiet_end)
        local = now.astimezone(tz)
        midnight = datetime.combine(local.date(), time(0), tzinfo=tz)
        sent, last = await self._store.sent_since(user_id, midnight)
        if sent >= self._policy.budget:
            tomorrow = midnight + timedelta(days=1)
            wake = self.quiet_now(tomorrow, tz) or tomorrow
            return Verdict(
                allowed=False,
                reason=f"daily nudge budget used ({sent}/{self._policy.budget})",
                retry_at=wake,
            )
        if last is not None and self._policy.min_gap and now - last < self._policy.min_gap:
            return Verdict(
                allowed=False,
                reason=f"last nudge only {int((now - last).total_seconds() // 60)} min ago",
                retry_at=last + self._policy.min_gap,
            )
        recent = await self._store.sent_texts(user_id, now - REPEAT_WINDOW)
        if recent and await self._is_repeat(text, recent):
            return Verdict(allowed=False, reason="repeats a recent nudge")
        return Verdict(allowed=True, reason="ok")

    async def _is_repeat(self, text: str, recent: list[str]) -> bool:
        if self._embedder is not None:
            try:
                vectors = await self._embedder.embed_queries([text, *recent])
            except Exception:  # embedder down: fall back to words
                vectors = []
            if vectors:
                first = vectors[0]
                return any(_cosine(first, v) >= REPEAT_COSINE for v in vectors[1:])
        words = set(segment.tokens(text))
        for other in recent:
            theirs = set(segment.tokens(other))
            union = words | theirs
            if union and len(words & theirs) / len(union) >= REPEAT_OVERLAP:
                return True
        return False


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
