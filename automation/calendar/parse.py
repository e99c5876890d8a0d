"""iCalendar data to the concrete events overlapping a window: expanded, checked, normalised.

Why per-series isolation: feeds in the wild carry broken events (a DTSTART of ``2025-99-99``,
an RRULE without FREQ, a DTEND that is a date while DTSTART is a time). One of those must cost
the user that one event, not the whole calendar, so each UID is expanded on its own and a
failure drops only that series (it is logged).

Normalisation, so callers only ever see aware times in the zone they asked for:
- floating times and TZIDs nobody knows are read as local time in the query's zone;
- all-day events start at local midnight of their first day;
- no DTEND and no DURATION means one hour for timed events, one day for all-day events;
- cancelled occurrences (STATUS:CANCELLED) are dropped here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from automation.calendar.errors import CalendarDataError
from automation.calendar.model import Event
from automation.calendar.timezones import localize, window

log = logging.getLogger(__name__)

DEFAULT_TIMED_DURATION: Final = timedelta(hours=1)
"""Length assumed for a timed event that states neither DTEND nor DURATION."""

_MARGIN: Final = timedelta(days=1)
"""Widening of the expansion window, so floating and all-day events (whose instant depends on
the zone) are never cut off before the exact, normalised filter runs."""

_TOO_FREQUENT: Final = frozenset({"SECONDLY", "MINUTELY"})
"""Rules that would expand to hundreds of thousands of occurrences and are never meetings."""

_RECURRENCE_PROPERTIES: Final = ("RRULE", "RDATE", "RECURRENCE-ID")
"""A series with any of these is recurring, so its occurrences get a `recurrence_id`."""

_CALENDAR_PROPERTIES: Final = ("CALSCALE", "X-WR-TIMEZONE")
"""Calendar-level properties that change how events are expanded (copied to each series)."""


def parse_events(
    data: bytes, *, source: str, start: datetime, end: datetime, tz: ZoneInfo
) -> list[Event]:
    """The events of `data` that overlap ``[start, end)``, sorted by start.

    Raises:
        CalendarDataError: `data` is not iCalendar at all (HTML, garbage, empty, truncated).
    """
    start, end = window(start, end, tz)
    events: list[Event] = []
    for calendar in load_calendars(data, source=source):
        events.extend(_events_of(calendar, source=source, start=start, end=end, tz=tz))
    events.sort(key=lambda e: (e.start, e.end, e.summary, e.uid))
    return events


def load_calendars(data: bytes, *, source: str) -> list[icalendar.Calendar]:
    """Parse every VCALENDAR in `data` (feeds sometimes concatenate several).

    Raises:
        CalendarDataError: `data` is not iCalendar, or ends before END:VCALENDAR.
    """
    text = data.decode("utf-8-sig", errors="replace")
    head = text.lstrip()
    if not head[:15].upper() == "BEGIN:VCALENDAR":
        raise CalendarDataError(_not_icalendar(head), source=source)
    try:
        components = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise CalendarDataError(
            f"the iCalendar data cannot be parsed ({str(exc)[:200]})", source=source
        ) from exc
    calendars = [c for c in components if isinstance(c, icalendar.Calendar)]
    if not calendars:
        raise CalendarDataError(
            "the iCalendar data is truncated (no END:VCALENDAR); the download may have been cut",
            source=source,
        )
    return calendars


def _not_icalendar(head: str) -> str:
    if not head:
        return "the calendar is empty; expected iCalendar data starting with BEGIN:VCALENDAR"
    if head.startswith("<"):
        return (
            "got HTML or XML instead of iCalendar data; the URL may lead to a login or web page "
            "rather than the calendar's ICS export"
        )
    return "this is not iCalendar data (it does not start with BEGIN:VCALENDAR)"


def _events_of(
    calendar: icalendar.Calendar, *, source: str, start: datetime, end: datetime, tz: ZoneInfo
) -> Iterator[Event]:
    series: dict[str, list[icalendar.Component]] = {}
    for component in calendar.walk("VEVENT"):
        uid = _uid(component)
        problem = _problem(component)
        if problem is not None:
            log.warning("calendar %r: skipping event %r: %s", source, uid, problem)
            continue
        _default_duration(component)
        series.setdefault(uid, []).append(component)

    low, high = start - _MARGIN, end + _MARGIN
    for uid, components in series.items():
        single = icalendar.Calendar()
        for name in _CALENDAR_PROPERTIES:
            if name in calendar:
                single[name] = calendar[name]
        for component in components:
            single.add_component(component)
        recurring = any(key in c for c in components for key in _RECURRENCE_PROPERTIES)
        try:
            occurrences = recurring_ical_events.of(single).between(low, high)
            events = [
                _to_event(o, uid=uid, source=source, tz=tz, recurring=recurring)
                for o in occurrences
            ]
        except Exception as exc:  # vendor code on untrusted data: lose the series, not the feed
            log.warning("calendar %r: skipping event %r: %s", source, uid, exc)
            continue
        for event in events:
            if event is not None and _overlaps_window(event, start, end):
                yield event


def _uid(component: icalendar.Component) -> str:
    uid = str(component.get("UID", "")).strip()
    if not uid:
        # Stable across downloads, so the same event keeps the same identity.
        uid = "no-uid-" + hashlib.sha256(component.to_ical()).hexdigest()[:16]
        component["UID"] = uid
    return uid


def _problem(component: icalendar.Component) -> str | None:
    """Why this VEVENT cannot be used, or None if it can."""
    start = _value(component, "DTSTART")
    if start is None:
        return "it has no DTSTART"
    if not isinstance(start, date):
        return f"DTSTART {str(start)!r} is not a date or a time"
    for name in ("DTEND", "RECURRENCE-ID"):
        if name in component and not isinstance(_value(component, name), date):
            return f"{name} {str(_value(component, name))!r} is not a date or a time"
    if "DURATION" in component and not isinstance(_value(component, "DURATION"), timedelta):
        return f"DURATION {str(_value(component, 'DURATION'))!r} is not a duration"
    rules = component.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        frequencies = rule.get("FREQ") if isinstance(rule, icalendar.vRecur) else None
        if not frequencies:
            return "its RRULE has no FREQ"
        if str(frequencies[0]).upper() in _TOO_FREQUENT:
            return f"it repeats {str(frequencies[0]).lower()}, which no calendar event does"
    return None


def _value(component: icalendar.Component, name: str) -> Any:
    """The decoded value, or the raw broken property (which `_problem` then rejects)."""
    prop = component.get(name)
    if isinstance(prop, icalendar.vBroken):
        return prop
    return getattr(prop, "dt", prop)


def _default_duration(component: icalendar.Component) -> None:
    start = _value(component, "DTSTART")
    if isinstance(start, datetime) and "DTEND" not in component and "DURATION" not in component:
        component.add("DURATION", DEFAULT_TIMED_DURATION)


def _to_event(
    occurrence: icalendar.Component, *, uid: str, source: str, tz: ZoneInfo, recurring: bool
) -> Event | None:
    if str(occurrence.get("STATUS", "")).upper() == "CANCELLED":
        return None
    raw_start = _value(occurrence, "DTSTART")
    raw_end = _value(occurrence, "DTEND")
    if raw_end is None:
        raw_end = raw_start + (_value(occurrence, "DURATION") or timedelta())
    all_day = not isinstance(raw_start, datetime)
    start, end = localize(raw_start, tz), localize(raw_end, tz)
    recurrence_id = _value(occurrence, "RECURRENCE-ID") if recurring else None
    return Event(
        uid=uid,
        summary=str(occurrence.get("SUMMARY", "")),
        start=start,
        end=max(start, end),
        all_day=all_day,
        calendar=source,
        location=_text(occurrence, "LOCATION"),
        description=_text(occurrence, "DESCRIPTION"),
        recurrence_id=_ical_text(recurrence_id) if isinstance(recurrence_id, date) else None,
        transparent=str(occurrence.get("TRANSP", "")).upper() == "TRANSPARENT",
    )


def _ical_text(value: date) -> str:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    if value.tzinfo is None or value.utcoffset() is None:
        return value.strftime("%Y%m%dT%H%M%S")
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(component: icalendar.Component, name: str) -> str | None:
    value = component.get(name)
    return str(value) if value is not None and str(value).strip() else None


def _overlaps_window(event: Event, start: datetime, end: datetime) -> bool:
    if event.start == event.end:
        return start <= event.start < end
    return event.start < end and event.end > start
