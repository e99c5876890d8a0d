"""Calendars: read CalDAV collections and ICS feeds/files, find conflicts, create events.

Reading expands recurrences (RRULE, EXDATE, moved occurrences) and returns aware times in the
zone the caller asks for; `CalendarService` merges many calendars and reports the ones that
fail instead of failing as a whole. Errors are drawn in `automation.calendar.errors`.
"""

from automation.calendar.caldav import CalDAVSource
from automation.calendar.conflicts import find_conflicts
from automation.calendar.errors import (
    CalendarAuthError,
    CalendarConfigError,
    CalendarDataError,
    CalendarError,
    CalendarUnavailable,
    InvalidEventError,
)
from automation.calendar.ics import IcsSource
from automation.calendar.model import Conflict, Event
from automation.calendar.service import CalendarService, CalendarView
from automation.calendar.sources import CalendarSource, WritableCalendarSource, source_from_url

__all__ = [
    "CalDAVSource",
    "CalendarAuthError",
    "CalendarConfigError",
    "CalendarDataError",
    "CalendarError",
    "CalendarService",
    "CalendarSource",
    "CalendarUnavailable",
    "CalendarView",
    "Conflict",
    "Event",
    "IcsSource",
    "InvalidEventError",
    "WritableCalendarSource",
    "find_conflicts",
    "source_from_url",
]
