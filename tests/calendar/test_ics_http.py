"""ICS feeds over HTTP from a real server on 127.0.0.1: success and every way a feed fails."""

from __future__ import annotations

import base64
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from automation.calendar import (
    CalendarAuthError,
    CalendarConfigError,
    CalendarDataError,
    CalendarUnavailable,
    IcsSource,
    source_from_url,
)
from automation.calendar.fetch import MAX_BYTES
from tests.calendar.http_server import CalendarHttpServer, Route
from tests.calendar.ics_data import WEEKLY_STANDUP

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2025, 3, 1, tzinfo=BERLIN)
END = datetime(2025, 3, 8, tzinfo=BERLIN)


async def test_feed_over_http_is_read(ics_server: CalendarHttpServer) -> None:
    ics_server.routes["/team.ics"] = Route(body=WEEKLY_STANDUP.encode())

    async with IcsSource(name="team", location=f"{ics_server.base}/team.ics") as source:
        events = await source.events(START, END, BERLIN)

    assert [(e.summary, e.start.hour, e.calendar) for e in events] == [("Standup", 9, "team")]


async def test_feed_with_basic_auth_sends_credentials_and_hides_them(
    ics_server: CalendarHttpServer,
) -> None:
    ics_server.routes["/private.ics"] = Route(body=WEEKLY_STANDUP.encode())
    url = f"{ics_server.base}/private.ics".replace("http://", "http://me:pa%24%24@")

    source = source_from_url(url, name="private")
    assert isinstance(source, IcsSource)
    events = await source.events(START, END, BERLIN)
    await source.aclose()

    assert len(events) == 1
    assert ics_server.auth_headers == ["Basic " + base64.b64encode(b"me:pa$$").decode()]
    assert "pa$$" not in repr(source) and "pa%24%24" not in repr(source)


@pytest.mark.parametrize(
    ("route", "error", "expected"),
    [
        (Route(status=500, body=b"boom"), CalendarUnavailable, "HTTP 500"),
        (Route(status=404), CalendarConfigError, "HTTP 404"),
        (Route(status=401), CalendarAuthError, "authentication failed"),
        (
            Route(body=b"<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"}),
            CalendarDataError,
            "got HTML",
        ),
        (Route(body=b"\x00\x01\x02 definitely not a calendar"), CalendarDataError, "not iCalendar"),
        (Route(body=b"x" * (MAX_BYTES + 1)), CalendarDataError, "more than 10 MB"),
        (Route(body=b"x" * (MAX_BYTES + 1), chunked=True), CalendarDataError, "more than 10 MB"),
    ],
    ids=["500", "404", "401", "html", "garbage", "too-large", "too-large-chunked"],
)
async def test_failing_feed_gives_a_clear_error(
    ics_server: CalendarHttpServer, route: Route, error: type[Exception], expected: str
) -> None:
    ics_server.routes["/cal.ics?token=SECRET"] = route
    source = IcsSource(name="feed", location=f"{ics_server.base}/cal.ics?token=SECRET")

    with pytest.raises(error) as info:
        await source.events(START, END, BERLIN)
    await source.aclose()

    message = str(info.value)
    assert expected in message
    assert message.startswith("calendar 'feed': ")
    assert "SECRET" not in message  # feed tokens live in query strings


async def test_slow_feed_times_out(ics_server: CalendarHttpServer) -> None:
    ics_server.routes["/slow.ics"] = Route(body=WEEKLY_STANDUP.encode(), delay=2.0)
    source = IcsSource(name="slow", location=f"{ics_server.base}/slow.ics", timeout=0.3)

    with pytest.raises(CalendarUnavailable, match="did not answer within 0.3 s"):
        await source.events(START, END, BERLIN)
    await source.aclose()


@pytest.mark.parametrize(
    ("location", "kind", "target"),
    [
        ("caldav+https://dav.example.com/u/cal", "CalDAVSource", "https://dav.example.com/u/cal/"),
        ("https://dav.example.com/u/cal/", "CalDAVSource", "https://dav.example.com/u/cal/"),
        ("https://example.com/u/cal.ics", "IcsSource", "https://example.com/u/cal.ics"),
        ("webcal://example.com/holidays", "IcsSource", "https://example.com/holidays"),
        (
            "https://example.com/export?format=ical",
            "IcsSource",
            "https://example.com/export?format=ical",
        ),
        ("/home/me/cal.ics", "IcsSource", "/home/me/cal.ics"),
        ("file:///home/me/cal.ics", "IcsSource", "file:///home/me/cal.ics"),
    ],
)
def test_source_from_url_picks_the_kind_by_documented_rule(
    location: str, kind: str, target: str
) -> None:
    source = source_from_url(location)

    assert type(source).__name__ == kind
    assert getattr(source, "url", getattr(source, "location", None)) == target
    assert source.name


def test_source_from_url_names_sources_and_rejects_unknown_schemes() -> None:
    assert source_from_url("https://example.com/u/holidays.ics").name == "holidays"
    assert source_from_url("/home/me/family.ics").name == "family"
    assert source_from_url("https://example.com/x.ics", name="Mine").name == "Mine"
    with pytest.raises(CalendarConfigError, match="unsupported location scheme 'ftp'"):
        source_from_url("ftp://example.com/cal.ics")
    with pytest.raises(CalendarConfigError, match="calendar 'odd': .* not a valid URL"):
        source_from_url("https://u:hunter2@[::1/cal.ics", name="odd")
