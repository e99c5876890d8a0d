"""The calendar-source contract, and building a source from a configured URL or path.

Anything with a `name` and an async `events(start, end, tz)` is a source; `IcsSource` and
`CalDAVSource` are the two built in. See `locations` for which string becomes which kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import httpx

from automation.calendar.caldav import CalDAVSource
from automation.calendar.ics import IcsSource
from automation.calendar.locations import SourceKind, classify, default_name
from automation.calendar.model import Event


@runtime_checkable
class CalendarSource(Protocol):
    """A calendar that can list the events in a time window."""

    name: str

    async def events(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[Event]:
        """Events overlapping ``[start, end)`` with aware times in `tz`; raises CalendarError."""
        ...


@runtime_checkable
class WritableCalendarSource(CalendarSource, Protocol):
    """A calendar that can also store new events (CalDAV)."""

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
    ) -> str:
        """Store an event and return its UID; idempotent per UID."""
        ...


@runtime_checkable
class ClosableSource(Protocol):
    """A source holding resources (an HTTP connection pool) to release at shutdown."""

    async def aclose(self) -> None:
        """Release them."""
        ...


def source_from_url(
    url: str,
    *,
    name: str | None = None,
    username: str | None = None,
    password: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> CalendarSource:
    """The source a configured location means (rules in `automation.calendar.locations`).

    Credentials may be given as arguments or inside the URL (``https://user:pw@host/…``);
    the arguments win, and neither ever appears in messages.

    Raises:
        CalendarConfigError: the location's scheme is not supported, or the URL is malformed.
    """
    kind, target = classify(url, source=name)
    name = name or default_name(target)
    if kind is SourceKind.CALDAV:
        return CalDAVSource(
            name=name, url=target, username=username, password=password, client=client
        )
    return IcsSource(
        name=name, location=target, username=username, password=password, client=client
    )
