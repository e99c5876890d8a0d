"""Per-user rate limits on messages and tool calls (a sliding window per user and kind).

Counted in the process: a limit protects the model and the user's accounts from a runaway loop
or a flood, and one replica seeing its own share is enough for that. A limit of 0 turns it off.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Limited:
    """A refusal: how many are allowed per window, and when the next one will be."""

    limit: int
    window: float
    retry_after: float


class RateLimiter:
    """Admits at most `limit` events per user within `window` seconds."""

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[int, deque[float]] = {}

    def hit(self, user_id: int, *, now: float | None = None) -> Limited | None:
        """Count one event; None when admitted, else why not (the event is not counted)."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        events = self._events.setdefault(user_id, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return Limited(
                limit=self.limit, window=self.window, retry_after=events[0] + self.window - now
            )
        events.append(now)
        return None
