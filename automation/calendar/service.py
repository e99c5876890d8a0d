"""Several calendars read as one: concurrent, failure-tolerant, briefly cached.

Why tolerant: the user asking "what's on tomorrow?" should get the four calendars that work
and a note about the fifth, not an exception. Why cached: the agent may ask about the same
day several times in one conversation, and feeds are re-downloaded whole on every read.
Only successful reads are cached, so a calendar that was down is retried on the next call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from automation.calendar.closing import AsyncClosing
from automation.calendar.errors import CalendarConfigError, CalendarError
from automation.calendar.model import Event
from automation.calendar.sources import CalendarSource, ClosableSource, WritableCalendarSource
from automation.calendar.timezones import window

log = logging.getLogger(__name__)

_CacheKey = tuple[int, datetime, datetime, ZoneInfo]  # (source index, start, end, zone)


@dataclass(frozen=True)
class CalendarView:
    """The merged events of all calendars, plus one message per calendar that failed."""

    events: list[Event]
    """All events in the window, sorted by start."""
    errors: list[str] = field(default_factory=list)
    """``"calendar 'work': authentication failed …"`` for each calendar that could not be read."""


class CalendarService(AsyncClosing):
    """Reads and writes the user's calendars as one."""

    def __init__(
        self,
        sources: Sequence[CalendarSource],
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CalendarConfigError(
                "two calendars share this name; give each a distinct name",
                source=duplicates[0],
            )
        self.sources: tuple[CalendarSource, ...] = tuple(sources)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[_CacheKey, tuple[float, list[Event]]] = {}
        self._writes = [0] * len(self.sources)
        """Per source, how many events were created; a read that overlapped a write of its
        source is not cached, so it cannot bring back a calendar without the new event."""

    async def events_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> CalendarView:
        """Events of every calendar overlapping ``[start, end)``, read concurrently.

        Never raises for a calendar's failure: it becomes an entry of `CalendarView.errors`.
        """
        start, end = window(start, end, tz)
        results = await asyncio.gather(
            *(self._read(index, start, end, tz) for index in range(len(self.sources)))
        )
        events: list[Event] = []
        errors: list[str] = []
        for result in results:
            if isinstance(result, str):
                errors.append(result)
            else:
                events.extend(result)
        events.sort(key=lambda e: (e.start, e.end, e.calendar, e.summary))
        return CalendarView(events=events, errors=errors)

    async def _read(
        self, index: int, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[Event] | str:
        source = self.sources[index]
        key = (index, start, end, tz)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        writes = self._writes[index]
        try:
            events = await source.events(start, end, tz)
        except CalendarError as exc:
            log.warning("%s", exc)
            return str(exc)
        except Exception as exc:  # a third-party source's bug must not hide the other calendars
            log.exception("calendar %r failed unexpectedly", source.name)
            return f"calendar {source.name!r}: unexpected error ({type(exc).__name__})"
        if writes == self._writes[index]:
            self._cache[key] = (now + self._cache_seconds, events)
        self._drop_expired(now)
        return events

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._cache.items() if expires <= now]:
            del self._cache[key]

    async def create_event(
        self,
        *,
        summary: str,
        start: datetime,
        end: datetime,
        all_day: bool = False,
        location: str | None = None,
        description: str | None = None,
        uid: str | None = None,
        calendar: str | None = None,
    ) -> str:
        """Store an event in `calendar` (default: the first writable one); return its UID.

        Raises:
            CalendarConfigError: no calendar of that name, it is read-only, or none is writable.
            CalendarError: the write itself failed (see `CalDAVSource.create_event`).
        """
        index, target = self._writable(calendar)
        uid = await target.create_event(
            summary=summary,
            start=start,
            end=end,
            all_day=all_day,
            location=location,
            description=description,
            uid=uid,
        )
        # The next read of this calendar must show the new event.
        self._writes[index] += 1
        for key in [k for k in self._cache if k[0] == index]:
            del self._cache[key]
        return uid

    def _writable(self, calendar: str | None) -> tuple[int, WritableCalendarSource]:
        names = ", ".join(repr(s.name) for s in self.sources) or "none"
        for index, source in enumerate(self.sources):
            if calendar is not None and source.name != calendar:
                continue
            if isinstance(source, WritableCalendarSource):
                return index, source
            if calendar is not None:
                raise CalendarConfigError(
                    "this calendar is read-only (an ICS feed or file); "
                    "new events need a CalDAV calendar",
                    source=calendar,
                )
        if calendar is not None:
            raise CalendarConfigError(
                f"no calendar has this name; configured calendars: {names}", source=calendar
            )
        raise CalendarConfigError(
            "no writable calendar is configured; add a CalDAV calendar URL to create events",
            source="",
        )

    async def aclose(self) -> None:
        """Close every source that holds resources."""
        for source in self.sources:
            if isinstance(source, ClosableSource):
                await source.aclose()
