"""Reading .ics files: recurrences, time zones, all-day events and the broken data feeds carry."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from automation.calendar import CalendarConfigError, CalendarDataError, Event, IcsSource
from automation.calendar.fetch import MAX_BYTES
from tests.calendar.ics_data import WEEKLY_STANDUP, vcalendar

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, tz: ZoneInfo = BERLIN
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


async def read(
    tmp_path: Path,
    ics: str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo = BERLIN,
) -> list[Event]:
    path = tmp_path / "cal.ics"
    path.write_text(ics, encoding="utf-8")
    async with IcsSource(name="file", location=str(path)) as source:
        return await source.events(start, end, tz)


async def test_weekly_series_skips_exdate_and_shows_moved_occurrence(tmp_path: Path) -> None:
    events = await read(tmp_path, WEEKLY_STANDUP, at(2025, 3, 1), at(2025, 4, 1))

    assert [(e.summary, e.start) for e in events] == [
        ("Standup", at(2025, 3, 3, 9)),
        ("Standup", at(2025, 3, 10, 9)),
        ("Standup (moved)", at(2025, 3, 25, 10)),
        ("Standup", at(2025, 3, 31, 9)),
    ]
    assert all(e.uid == "standup@example.com" and e.calendar == "file" for e in events)
    assert all(e.end - e.start == timedelta(minutes=15) for e in events)
    # The moved one keeps the identity of the occurrence it replaces (24 March, 09:00 CET).
    assert events[2].recurrence_id == "20250324T080000Z"
    assert events[0].recurrence_id == "20250303T080000Z"


async def test_weekly_event_stays_at_nine_local_across_the_dst_change(tmp_path: Path) -> None:
    events = await read(tmp_path, WEEKLY_STANDUP, at(2025, 3, 28), at(2025, 4, 8))

    assert [e.start for e in events] == [at(2025, 3, 31, 9), at(2025, 4, 7, 9)]
    before = await read(tmp_path, WEEKLY_STANDUP, at(2025, 3, 9), at(2025, 3, 11))
    assert before[0].start.hour == events[0].start.hour == 9
    assert before[0].start.utcoffset() == timedelta(hours=1)
    assert events[0].start.utcoffset() == timedelta(hours=2)


async def test_new_york_dst_week_keeps_local_time_when_read_from_another_zone(
    tmp_path: Path,
) -> None:
    # US clocks change on 9 March 2025, Europe's on 30 March: for three weeks the gap is 5 h.
    ics = vcalendar(
        """
        UID:ny@example.com
        SUMMARY:NY sync
        DTSTART;TZID=America/New_York:20250303T090000
        DTEND;TZID=America/New_York:20250303T100000
        RRULE:FREQ=WEEKLY;COUNT=3
        """
    )
    events = await read(tmp_path, ics, at(2025, 3, 1), at(2025, 3, 31))

    assert [e.start.astimezone(NEW_YORK).hour for e in events] == [9, 9, 9]
    assert [e.start for e in events] == [
        at(2025, 3, 3, 15),
        at(2025, 3, 10, 14),
        at(2025, 3, 17, 14),
    ]
    assert all(e.start.tzinfo == BERLIN for e in events)


async def test_event_in_another_tzid_is_converted_to_the_query_zone(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:call@example.com
        SUMMARY:Call with New York
        DTSTART;TZID=America/New_York:20250610T090000
        DTEND;TZID=America/New_York:20250610T093000
        LOCATION:Zoom
        DESCRIPTION:Quarterly numbers
        """
    )
    [event] = await read(tmp_path, ics, at(2025, 6, 10), at(2025, 6, 11))

    assert event.start == at(2025, 6, 10, 15)
    assert event.start.tzinfo == BERLIN
    assert event.end == at(2025, 6, 10, 15, 30)
    assert (event.location, event.description) == ("Zoom", "Quarterly numbers")
    assert event.recurrence_id is None
    assert not event.all_day


async def test_custom_vtimezone_definition_is_honoured(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:india@example.com
        SUMMARY:Bangalore standup
        DTSTART;TZID=India Custom:20250610T100000
        DTEND;TZID=India Custom:20250610T103000
        """,
        extra=(
            "BEGIN:VTIMEZONE\nTZID:India Custom\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
            "TZOFFSETFROM:+0530\nTZOFFSETTO:+0530\nTZNAME:IST\nEND:STANDARD\nEND:VTIMEZONE\n"
        ),
    )
    [event] = await read(tmp_path, ics, at(2025, 6, 10), at(2025, 6, 11))

    assert event.start == at(2025, 6, 10, 4, 30, tz=ZoneInfo("UTC"))


async def test_all_day_event_spans_local_midnights_in_the_query_zone(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:holiday@example.com
        SUMMARY:Whit Monday
        DTSTART;VALUE=DATE:20250609
        DTEND;VALUE=DATE:20250610
        """
    )
    [event] = await read(tmp_path, ics, at(2025, 6, 9, 12, tz=NEW_YORK), at(2025, 6, 10), NEW_YORK)

    assert event.all_day
    assert event.start == at(2025, 6, 9, tz=NEW_YORK)
    assert event.end == at(2025, 6, 10, tz=NEW_YORK)
    assert event.start.tzinfo == NEW_YORK


async def test_floating_time_and_unknown_tzid_are_read_as_local_time(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:floating@example.com
        SUMMARY:Floating
        DTSTART:20250610T090000
        DTEND:20250610T100000
        """,
        """
        UID:mars@example.com
        SUMMARY:Unknown zone
        DTSTART;TZID=Mars/Olympus_Mons:20250610T110000
        DTEND;TZID=Mars/Olympus_Mons:20250610T120000
        """,
    )
    tokyo = ZoneInfo("Asia/Tokyo")
    events = await read(tmp_path, ics, at(2025, 6, 10, tz=tokyo), at(2025, 6, 11, tz=tokyo), tokyo)

    assert [(e.summary, e.start) for e in events] == [
        ("Floating", at(2025, 6, 10, 9, tz=tokyo)),
        ("Unknown zone", at(2025, 6, 10, 11, tz=tokyo)),
    ]


async def test_missing_dtend_means_one_hour_or_one_day_and_duration_is_used(
    tmp_path: Path,
) -> None:
    ics = vcalendar(
        """
        UID:no-end@example.com
        SUMMARY:No end
        DTSTART:20250610T090000Z
        """,
        """
        UID:duration@example.com
        SUMMARY:With duration
        DTSTART:20250610T120000Z
        DURATION:PT45M
        """,
        """
        UID:day@example.com
        SUMMARY:One day
        DTSTART;VALUE=DATE:20250610
        """,
    )
    events = await read(tmp_path, ics, at(2025, 6, 10), at(2025, 6, 11))

    lengths = {e.summary: e.end - e.start for e in events}
    assert lengths == {
        "No end": timedelta(hours=1),
        "With duration": timedelta(minutes=45),
        "One day": timedelta(days=1),
    }


async def test_broken_events_are_skipped_and_the_rest_is_kept(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:bad-date@example.com
        SUMMARY:Bad date
        DTSTART:2025-99-99
        """,
        """
        UID:no-start@example.com
        SUMMARY:No start
        """,
        """
        UID:bad-rule@example.com
        SUMMARY:Bad rule
        DTSTART:20250610T080000Z
        RRULE:this is not a rule
        """,
        """
        UID:mixed@example.com
        SUMMARY:Date start, time end
        DTSTART;VALUE=DATE:20250610
        DTEND:20250610T100000Z
        """,
        """
        UID:good@example.com
        SUMMARY:Good
        DTSTART:20250610T090000Z
        DTEND:20250610T100000Z
        this line is junk
        """,
    )
    events = await read(tmp_path, ics, at(2025, 6, 10), at(2025, 6, 11))

    assert "Good" in [e.summary for e in events]
    assert not {"Bad date", "No start", "Bad rule"} & {e.summary for e in events}


async def test_cancelled_events_are_dropped_and_transparent_ones_marked(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:cancelled@example.com
        SUMMARY:Cancelled
        STATUS:CANCELLED
        DTSTART:20250610T090000Z
        DTEND:20250610T100000Z
        """,
        """
        UID:series@example.com
        SUMMARY:Daily
        DTSTART:20250609T070000Z
        DTEND:20250609T080000Z
        RRULE:FREQ=DAILY;COUNT=3
        """,
        """
        UID:series@example.com
        SUMMARY:Daily
        RECURRENCE-ID:20250610T070000Z
        STATUS:CANCELLED
        DTSTART:20250610T070000Z
        DTEND:20250610T080000Z
        """,
        """
        UID:wfh@example.com
        SUMMARY:Working from home
        TRANSP:TRANSPARENT
        DTSTART:20250610T060000Z
        DTEND:20250610T160000Z
        """,
    )
    events = await read(tmp_path, ics, at(2025, 6, 9), at(2025, 6, 12))

    assert [(e.summary, e.start.day, e.transparent) for e in events] == [
        ("Daily", 9, False),
        ("Working from home", 10, True),
        ("Daily", 11, False),
    ]


async def test_google_style_feed_with_x_wr_timezone_keeps_local_time_across_dst(
    tmp_path: Path,
) -> None:
    # Google exports UTC times and names the calendar's zone in X-WR-TIMEZONE.
    ics = vcalendar(
        """
        UID:gym@example.com
        SUMMARY:Gym
        DTSTART:20250324T170000Z
        DTEND:20250324T180000Z
        RRULE:FREQ=WEEKLY;COUNT=2
        """,
        extra="X-WR-TIMEZONE:Europe/Berlin\n",
    )
    events = await read(tmp_path, ics, at(2025, 3, 20), at(2025, 4, 5))

    assert [e.start for e in events] == [at(2025, 3, 24, 18), at(2025, 3, 31, 18)]


async def test_window_keeps_overlapping_events_and_drops_touching_ones(tmp_path: Path) -> None:
    ics = vcalendar(
        """
        UID:late@example.com
        SUMMARY:Runs into the window
        DTSTART;TZID=Europe/Berlin:20250609T230000
        DTEND;TZID=Europe/Berlin:20250610T010000
        """,
        """
        UID:before@example.com
        SUMMARY:Ends at the window start
        DTSTART;TZID=Europe/Berlin:20250609T220000
        DTEND;TZID=Europe/Berlin:20250610T000000
        """,
        """
        UID:after@example.com
        SUMMARY:Starts at the window end
        DTSTART;TZID=Europe/Berlin:20250611T000000
        DTEND;TZID=Europe/Berlin:20250611T010000
        """,
    )
    events = await read(tmp_path, ics, at(2025, 6, 10), at(2025, 6, 11))

    assert [e.summary for e in events] == ["Runs into the window"]


async def test_file_url_is_read_like_a_path(tmp_path: Path) -> None:
    path = tmp_path / "my calendar.ics"
    path.write_text(WEEKLY_STANDUP)
    async with IcsSource(name="f", location=path.as_uri()) as source:
        events = await source.events(at(2025, 3, 1), at(2025, 3, 8), BERLIN)

    assert [e.summary for e in events] == ["Standup"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<!DOCTYPE html><html><body>Please log in</body></html>", "got HTML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "not iCalendar data"),
        (b"", "empty"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", "truncated"),
    ],
)
async def test_non_calendar_file_gives_a_clear_error(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(content)
    source = IcsSource(name="broken", location=str(path))

    with pytest.raises(CalendarDataError) as info:
        await source.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)

    assert expected in str(info.value)
    assert str(info.value).startswith("calendar 'broken': ")
    assert info.value.source == "broken"


async def test_missing_file_and_directory_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(CalendarConfigError, match="does not exist"):
        await IcsSource(name="gone", location=str(tmp_path / "nope.ics")).events(
            at(2025, 6, 1), at(2025, 6, 2), BERLIN
        )
    with pytest.raises(CalendarConfigError, match="is a directory"):
        await IcsSource(name="dir", location=str(tmp_path)).events(
            at(2025, 6, 1), at(2025, 6, 2), BERLIN
        )


async def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.ics"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: costs no disk or time

    with pytest.raises(CalendarDataError, match="over the 10 MB limit"):
        await IcsSource(name="huge", location=str(path)).events(
            at(2025, 6, 1), at(2025, 6, 2), BERLIN
        )
