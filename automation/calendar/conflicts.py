"""Find pairs of events that overlap, in O(n log n + k) for n events and k conflicts.

Policy, so a user is warned about real double bookings only:
- all-day events are left out unless asked for (a holiday does not "overlap" a meeting);
- transparent events never block time (TRANSP:TRANSPARENT); cancelled ones never reach here;
- touching events (end == start) and zero-length markers do not conflict;
- the same occurrence listed twice (an invitation in two calendars) is not a conflict.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from automation.calendar.model import Conflict, Event


def _blocks_time(event: Event, *, include_all_day: bool) -> bool:
    if event.transparent or event.end <= event.start:
        return False
    return include_all_day or not event.all_day


def _same_occurrence(a: Event, b: Event) -> bool:
    return a.uid == b.uid and a.recurrence_id == b.recurrence_id and a.start == b.start


def find_conflicts(events: Iterable[Event], *, include_all_day: bool = False) -> list[Conflict]:
    """Every pair of overlapping events, ordered by when the overlap starts.

    Sort by start, then sweep: a heap keyed by end time holds the events still running; each
    new event conflicts with exactly the ones left after dropping those that ended by its start.
    Conflicts come out in sweep order, which is the order of the later event's start, i.e. of
    the overlap's start; no final sort is needed.
    """
    candidates = sorted(
        (e for e in events if _blocks_time(e, include_all_day=include_all_day)),
        key=lambda e: (e.start, e.end, e.calendar, e.uid),
    )
    running: list[tuple[float, int, Event]] = []  # (end timestamp, tiebreak, event)
    conflicts: list[Conflict] = []
    for index, event in enumerate(candidates):
        start = event.start.timestamp()
        while running and running[0][0] <= start:
            heapq.heappop(running)
        conflicts.extend(
            Conflict(first=other, second=event)
            for _, _, other in running
            if not _same_occurrence(other, event)
        )
        heapq.heappush(running, (event.end.timestamp(), index, event))
    return conflicts
