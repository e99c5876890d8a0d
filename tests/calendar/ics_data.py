"""iCalendar text for the tests, built from readable pieces."""

from __future__ import annotations

import textwrap


def vcalendar(*events: str, extra: str = "") -> str:
    """A VCALENDAR around `events` (each the lines between BEGIN:VEVENT and END:VEVENT)."""
    body = "".join(
        f"BEGIN:VEVENT\n{textwrap.dedent(e).strip()}\nDTSTAMP:20250101T000000Z\nEND:VEVENT\n"
        for e in events
    )
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\n{extra}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n")


WEEKLY_STANDUP = vcalendar(
    # Mondays 09:00 Berlin from 3 March 2025; 17 March is skipped; 24 March moves to Tuesday.
    """
    UID:standup@example.com
    SUMMARY:Standup
    DTSTART;TZID=Europe/Berlin:20250303T090000
    DTEND;TZID=Europe/Berlin:20250303T091500
    RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6
    EXDATE;TZID=Europe/Berlin:20250317T090000
    """,
    """
    UID:standup@example.com
    SUMMARY:Standup (moved)
    RECURRENCE-ID;TZID=Europe/Berlin:20250324T090000
    DTSTART;TZID=Europe/Berlin:20250325T100000
    DTEND;TZID=Europe/Berlin:20250325T101500
    """,
)

_REVIEW = """
    UID:review@example.com
    SUMMARY:Design review
    DTSTART;TZID=Europe/Berlin:20250602T140000
    DTEND;TZID=Europe/Berlin:20250602T150000
    RRULE:FREQ=WEEKLY;BYDAY=MO,TH
    """
_DENTIST = """
    UID:dentist@example.com
    SUMMARY:Dentist
    DTSTART;TZID=Europe/Berlin:20250612T143000
    DTEND;TZID=Europe/Berlin:20250612T153000
    """

DESIGN_REVIEW = vcalendar(_REVIEW)  # Mondays and Thursdays 14:00-15:00 Berlin from 2 June 2025
DENTIST = vcalendar(_DENTIST)  # Thursday 12 June 2025, 14:30-15:30 Berlin
DESIGN_REVIEW_AND_DENTIST = vcalendar(_REVIEW, _DENTIST)
