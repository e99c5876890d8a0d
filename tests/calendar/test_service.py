"""Many calendars as one: merged, concurrent, tolerant of failures, briefly cached."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from automation.calendar import (
    CalDAVSource,
    CalendarConfigError,
    CalendarService,
    Event,
    IcsSource,
    find_conflicts,
    source_from_url,
)
from tests.calendar.http_server import CalendarHttpServer, Route
from tests.calendar.ics_data import DENTIST, DESIGN_REVIEW, vcalendar
from tests.calendar.radicale import Radicale, free_port

BERLIN = ZoneInfo("Europe/Berlin")
DAY_START = datetime(2025, 6, 12, tzinfo=BERLIN)
DAY_END = datetime(2025, 6, 13, tzinfo=BERLIN)

FAMILY = vcalendar(
    """
    UID:school@example.com
    SUMMARY:School play
    DTSTART;TZID=Europe/Berlin:20250612T180000
    DTEND;TZID=Europe/Berlin:20250612T193000
    """
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class BuggySource:
    """A third-party source with a bug: it raises something that is not a CalendarError."""

    name = "buggy"

    async def events(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[Event]:
        raise KeyError("bug")


async def test_working_calendars_are_listed_and_failing_ones_reported(
    radicale: Radicale, calendar_url: str, ics_server: CalendarHttpServer, tmp_path: Path
) -> None:
    radicale.put(calendar_url, DESIGN_REVIEW)
    radicale.put(calendar_url, DENTIST)
    ics_server.routes["/family.ics"] = Route(body=FAMILY.encode())
    ics_server.routes["/garbage.ics"] = Route(body=b"this is not a calendar")
    ics_server.routes["/broken.ics"] = Route(status=500)
    (tmp_path / "holidays.ics").write_text(
        vcalendar("UID:h\nSUMMARY:Holiday\nDTSTART;VALUE=DATE:20250612")
    )
    service = CalendarService(
        [
            source_from_url(calendar_url, name="work"),
            source_from_url(f"{ics_server.base}/family.ics", name="family"),
            source_from_url(str(tmp_path / "holidays.ics"), name="holidays"),
            source_from_url(f"http://127.0.0.1:{free_port()}/down.ics", name="down"),
            source_from_url(f"{ics_server.base}/garbage.ics", name="garbage"),
            source_from_url(f"{ics_server.base}/broken.ics", name="broken"),
        ]
    )

    view = await service.events_between(DAY_START, DAY_END, BERLIN)
    await service.aclose()

    assert [(e.calendar, e.summary) for e in view.events] == [
        ("holidays", "Holiday"),
        ("work", "Design review"),
        ("work", "Dentist"),
        ("family", "School play"),
    ]
    assert len(view.errors) == 3
    down, garbage, broken = view.errors
    assert down.startswith("calendar 'down': cannot connect") and "connection refused" in down
    assert garbage.startswith("calendar 'garbage': ") and "not iCalendar" in garbage
    assert broken.startswith("calendar 'broken': ") and "HTTP 500" in broken
    [conflict] = find_conflicts(view.events)
    assert (conflict.first.summary, conflict.second.summary) == ("Design review", "Dentist")


async def test_a_slow_or_buggy_source_does_not_block_or_break_the_others(
    tmp_path: Path, ics_server: CalendarHttpServer
) -> None:
    ics_server.routes["/slow.ics"] = Route(body=FAMILY.encode(), delay=2.0)
    (tmp_path / "family.ics").write_text(FAMILY)
    service = CalendarService(
        [
            IcsSource(name="slow", location=f"{ics_server.base}/slow.ics", timeout=0.3),
            IcsSource(name="family", location=str(tmp_path / "family.ics")),
            BuggySource(),
        ]
    )

    started = time.monotonic()
    view = await service.events_between(DAY_START, DAY_END, BERLIN)
    await service.aclose()

    assert time.monotonic() - started < 1.5
    assert [e.summary for e in view.events] == ["School play"]
    assert view.errors[0].startswith("calendar 'slow': ") and "did not answer" in view.errors[0]
    assert view.errors[1] == "calendar 'buggy': unexpected error (KeyError)"


async def test_reads_are_cached_per_window_and_failures_are_retried(
    ics_server: CalendarHttpServer,
) -> None:
    ics_server.routes["/family.ics"] = Route(body=FAMILY.encode())
    clock = FakeClock()
    service = CalendarService(
        [
            IcsSource(name="family", location=f"{ics_server.base}/family.ics"),
            IcsSource(name="flaky", location=f"{ics_server.base}/flaky.ics"),
        ],
        cache_seconds=60,
        clock=clock,
    )

    first = await service.events_between(DAY_START, DAY_END, BERLIN)
    ics_server.routes["/flaky.ics"] = Route(body=FAMILY.encode())
    second = await service.events_between(DAY_START, DAY_END, BERLIN)

    assert ics_server.hits["/family.ics"] == 1  # cached
    assert ics_server.hits["/flaky.ics"] == 2  # the 404 was not cached
    assert len(first.events) == 1 and len(first.errors) == 1
    assert len(second.events) == 2 and second.errors == []

    await service.events_between(DAY_START, datetime(2025, 6, 14, tzinfo=BERLIN), BERLIN)
    assert ics_server.hits["/family.ics"] == 2  # another window is another entry
    clock.now += 61
    await service.events_between(DAY_START, DAY_END, BERLIN)
    assert ics_server.hits["/family.ics"] == 3  # expired
    await service.aclose()


async def test_created_event_goes_to_the_first_caldav_calendar_and_shows_at_once(
    radicale: Radicale, calendar_url: str, tmp_path: Path
) -> None:
    other_url = radicale.make_calendar()
    (tmp_path / "family.ics").write_text(FAMILY)
    service = CalendarService(
        [
            IcsSource(name="family", location=str(tmp_path / "family.ics")),
            CalDAVSource(name="work", url=calendar_url),
            CalDAVSource(name="private", url=other_url),
        ],
        cache_seconds=600,
    )
    before = await service.events_between(DAY_START, DAY_END, BERLIN)

    uid = await service.create_event(
        summary="Dentist",
        start=datetime(2025, 6, 12, 14, 30, tzinfo=BERLIN),
        end=datetime(2025, 6, 12, 15, 30, tzinfo=BERLIN),
    )
    await service.create_event(
        summary="Therapy",
        start=datetime(2025, 6, 12, 8, tzinfo=BERLIN),
        end=datetime(2025, 6, 12, 9, tzinfo=BERLIN),
        calendar="private",
    )
    after = await service.events_between(DAY_START, DAY_END, BERLIN)
    await service.aclose()

    assert [e.summary for e in before.events] == ["School play"]
    assert [(e.calendar, e.summary) for e in after.events] == [
        ("private", "Therapy"),
        ("work", "Dentist"),
        ("family", "School play"),
    ]
    assert after.events[1].uid == uid


async def test_creating_needs_a_writable_calendar(tmp_path: Path, calendar_url: str) -> None:
    (tmp_path / "family.ics").write_text(FAMILY)
    feed = IcsSource(name="family", location=str(tmp_path / "family.ics"))
    start = datetime(2025, 6, 12, 9, tzinfo=BERLIN)
    end = datetime(2025, 6, 12, 10, tzinfo=BERLIN)

    read_only = CalendarService([feed])
    with pytest.raises(CalendarConfigError, match="no writable calendar"):
        await read_only.create_event(summary="x", start=start, end=end)

    mixed = CalendarService([feed, CalDAVSource(name="work", url=calendar_url)])
    with pytest.raises(CalendarConfigError, match="read-only") as info:
        await mixed.create_event(summary="x", start=start, end=end, calendar="family")
    assert info.value.source == "family"
    with pytest.raises(CalendarConfigError, match="configured calendars: 'family', 'work'"):
        await mixed.create_event(summary="x", start=start, end=end, calendar="nope")
    await mixed.aclose()


def test_two_calendars_may_not_share_a_name(tmp_path: Path) -> None:
    with pytest.raises(CalendarConfigError, match="distinct name"):
        CalendarService(
            [
                IcsSource(name="same", location=str(tmp_path / "a.ics")),
                IcsSource(name="same", location=str(tmp_path / "b.ics")),
            ]
        )
