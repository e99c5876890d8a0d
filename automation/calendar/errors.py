"""Errors raised by the calendar package; each names the calendar it is about, if any.

CalendarError                   base: `source` is the calendar's configured name ("" when the
│                               error is about the set of calendars, not one of them)
├── CalendarConfigError         misconfiguration: fix the URL, the path or the calendar name
│   └── CalendarAuthError       the server refused the credentials (HTTP 401/403)
├── CalendarUnavailable         runtime fault: refused, timed out, HTTP 5xx (retry later)
├── CalendarDataError           the server answered, but not with usable iCalendar data
└── InvalidEventError           the caller asked to create an event that cannot exist

Messages never contain passwords: URLs are shown without user info or query string
(see `locations.display_url`), and credentials are never interpolated.
"""

from __future__ import annotations

from typing import ClassVar


class CalendarError(Exception):
    """A calendar could not be read or written; `str()` is fit to show the user."""

    retryable: ClassVar[bool] = False
    """Whether trying again later may succeed without the user changing anything."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(f"calendar {source!r}: {message}" if source else message)
        self.source = source
        """The configured name of the calendar that failed."""
        self.reason = message
        """The message without the calendar name, for callers that show the name themselves."""


class CalendarConfigError(CalendarError):
    """The configuration points at something that is not a usable calendar."""


class CalendarAuthError(CalendarConfigError):
    """Username or password are wrong, or the account may not access this calendar."""


class CalendarUnavailable(CalendarError):
    """The calendar could not be reached or the server failed; it may work later."""

    retryable = True


class CalendarDataError(CalendarError):
    """The body is not iCalendar (an HTML login page, garbage, truncated) or is too large."""


class InvalidEventError(CalendarError):
    """Arguments to `create_event` describe an impossible event (naive time, end before start)."""
