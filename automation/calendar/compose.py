"""A new event as the iCalendar resource a CalDAV server stores.

Times keep their IANA zone (``DTSTART;TZID=Europe/Berlin``, with a VTIMEZONE) so a client
shows the event in the zone it was made in; aware times without an IANA zone become UTC,
because a TZID like ``UTC+02:00`` means nothing to other clients.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from automation.calendar.errors import InvalidEventError

PRODID = "-//Dadang//automation.calendar//EN"


def new_uid() -> str:
    """A globally unique UID in the form RFC 5545 recommends."""
    return f"{uuid.uuid4()}@dadang"


def event_ics(
    *,
    uid: str,
    summary: str,
    start: datetime,
    end: datetime,
    all_day: bool,
    location: str | None,
    description: str | None,
    source: str,
    now: datetime | None = None,
) -> bytes:
    """One VCALENDAR holding one VEVENT.

    For all-day events the dates of `start` and `end` (in their own zones) are used and
    `end` is exclusive; an end on or before the start date makes it a one-day event.

    Raises:
        InvalidEventError: a naive time, an end before the start, or an empty summary.
    """
    for label, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEventError(
                f"the {label} time {value.isoformat()} has no time zone; pass an aware datetime",
                source=source,
            )
    if not summary.strip():
        raise InvalidEventError("an event needs a summary (title)", source=source)
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("DTSTAMP", (now or datetime.now(UTC)).astimezone(UTC))
    event.add("SUMMARY", summary)
    if all_day:
        first: date = start.date()
        last: date = max(end.date(), first + timedelta(days=1))
        event.add("DTSTART", first)
        event.add("DTEND", last)
    else:
        if end <= start:
            raise InvalidEventError(
                f"the event ends ({end.isoformat()}) before it starts ({start.isoformat()})",
                source=source,
            )
        event.add("DTSTART", _portable(start))
        event.add("DTEND", _portable(end))
    if location:
        event.add("LOCATION", location)
    if description:
        event.add("DESCRIPTION", description)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def _portable(value: datetime) -> datetime:
    if isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key != "UTC":
        return value
    return value.astimezone(UTC)
