"""What a calendar holds once read: concrete events (occurrences) and conflicts between them.

Recurring series are already expanded: each `Event` is one occurrence with fixed, aware start
and end times, so callers never need to know about RRULE, EXDATE or time zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, kw_only=True)
class Event:
    """One occurrence of a calendar event, with times in the time zone of the query."""

    uid: str
    """The iCalendar UID; all occurrences of a series share it."""
    summary: str
    """The title; empty when the event has none."""
    start: datetime
    """Aware start; for all-day events, local midnight of the first day in the query's zone."""
    end: datetime
    """Aware, exclusive end; an all-day event on one day ends at the next local midnight."""
    all_day: bool
    """The event has dates, not times (a holiday, a birthday, a trip)."""
    calendar: str
    """The name of the source the event came from."""
    location: str | None = None
    """Where, as the organiser wrote it."""
    description: str | None = None
    """Free-text notes."""
    recurrence_id: str | None = None
    """For occurrences of a recurring series: the RECURRENCE-ID in iCalendar text form
    (``20250414T070000Z``, or ``20250414`` for all-day), which is what editing one
    occurrence over CalDAV needs. None for single events."""
    transparent: bool = False
    """TRANSP:TRANSPARENT: the event does not block time (a reminder, "working from home")."""

    @property
    def duration(self) -> timedelta:
        """How long the event lasts."""
        return self.end - self.start

    def overlaps(self, other: Event) -> bool:
        """Whether both events occupy some common instant.

        Touching events (one ends when the other starts) do not overlap, and a zero-length
        event (a deadline marker) occupies no time, so it overlaps nothing.
        """
        if self.start >= self.end or other.start >= other.end:
            return False
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, kw_only=True)
class Conflict:
    """Two events that overlap in time; `first` starts no later than `second`."""

    first: Event
    second: Event

    @property
    def start(self) -> datetime:
        """When the overlap begins."""
        return max(self.first.start, self.second.start)

    @property
    def end(self) -> datetime:
        """When the overlap ends (exclusive)."""
        return min(self.first.end, self.second.end)

    @property
    def duration(self) -> timedelta:
        """How long both events run at once."""
        return self.end - self.start
