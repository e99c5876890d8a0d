"""CalDAV against a real Radicale: time-range reads, creating events, and what goes wrong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from automation.calendar import (
    CalDAVSource,
    CalendarAuthError,
    CalendarConfigError,
    CalendarUnavailable,
    InvalidEventError,
    source_from_url,
)
from tests.calendar.ics_data import WEEKLY_STANDUP, vcalendar
from tests.calendar.radicale import Radicale, free_port

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, tz: ZoneInfo = BERLIN
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.fixture(scope="module")
def radicale_with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale that checks passwords (htpasswd, plain text)."""
    server = Radicale(tmp_path_factory.mktemp("radicale-auth"), users={"bob": "s3cret-pw"})
    server.start()
    yield server
    server.stop()


async def test_reads_only_events_in_the_time_range_with_recurrences_expanded(
    radicale: Radicale, calendar_url: str
) -> None:
    radicale.put(calendar_url, WEEKLY_STANDUP)
    radicale.put(
        calendar_url,
        vcalendar(
            """
            UID:lunch@example.com
            SUMMARY:Lunch with Ana
            DTSTART;TZID=America/New_York:20250325T080000
            DTEND;TZID=America/New_York:20250325T090000
            """
        ),
    )
    radicale.put(
        calendar_url,
        vcalendar(
            """
            UID:later@example.com
            SUMMARY:Next year
            DTSTART:20260101T100000Z
            DTEND:20260101T110000Z
            """
        ),
    )
    async with CalDAVSource(name="home", url=calendar_url) as source:
        events = await source.events(at(2025, 3, 20), at(2025, 4, 3), BERLIN)

    assert [(e.summary, e.start) for e in events] == [
        ("Standup (moved)", at(2025, 3, 25, 10)),
        ("Lunch with Ana", at(2025, 3, 25, 13)),
        ("Standup", at(2025, 3, 31, 9)),
    ]
    assert all(e.calendar == "home" for e in events)
    assert events[0].recurrence_id == "20250324T080000Z"


async def test_all_day_and_floating_events_near_the_window_edge_use_the_query_zone(
    radicale: Radicale, calendar_url: str
) -> None:
    radicale.put(
        calendar_url,
        vcalendar(
            """
            UID:birthday@example.com
            SUMMARY:Birthday
            DTSTART;VALUE=DATE:20250610
            DTEND;VALUE=DATE:20250611
            """,
        ),
    )
    radicale.put(
        calendar_url,
        vcalendar(
            """
            UID:breakfast@example.com
            SUMMARY:Breakfast
            DTSTART:20250610T070000
            DTEND:20250610T080000
            """,
        ),
    )
    source = CalDAVSource(name="home", url=calendar_url)
    # 10 June in Tokyo starts at 15:00 UTC on 9 June: a UTC-only filter would miss both.
    events = await source.events(at(2025, 6, 10, tz=TOKYO), at(2025, 6, 10, 9, tz=TOKYO), TOKYO)
    await source.aclose()

    assert [(e.summary, e.start, e.all_day) for e in events] == [
        ("Birthday", at(2025, 6, 10, tz=TOKYO), True),
        ("Breakfast", at(2025, 6, 10, 7, tz=TOKYO), False),
    ]


async def test_created_event_reads_back_in_its_zone(radicale: Radicale, calendar_url: str) -> None:
    async with CalDAVSource(name="home", url=calendar_url) as source:
        uid = await source.create_event(
            summary="Dentist",
            start=at(2025, 6, 12, 14, 30),
            end=at(2025, 6, 12, 15, 30),
            location="Hauptstr. 1",
            description="Bring the insurance card",
        )
        events = await source.events(at(2025, 6, 12), at(2025, 6, 13), TOKYO)

    [event] = events
    assert event.uid == uid and uid.endswith("@dadang")
    assert event.start == at(2025, 6, 12, 14, 30)
    assert event.start.tzinfo == TOKYO
    assert event.end - event.start == timedelta(hours=1)
    assert (event.location, event.description) == ("Hauptstr. 1", "Bring the insurance card")
    assert event.recurrence_id is None


async def test_created_all_day_event_covers_whole_days(
    radicale: Radicale, calendar_url: str
) -> None:
    async with CalDAVSource(name="home", url=calendar_url) as source:
        await source.create_event(
            summary="Conference",
            start=at(2025, 9, 1),
            end=at(2025, 9, 3),
            all_day=True,
        )
        [event] = await source.events(at(2025, 9, 1), at(2025, 9, 5), BERLIN)

    assert event.all_day
    assert (event.start, event.end) == (at(2025, 9, 1), at(2025, 9, 3))


@pytest.mark.parametrize("uid", ["retry-me@example.com", "odd/uid with spaces?#"])
async def test_creating_twice_with_the_same_uid_stores_one_event(
    radicale: Radicale, calendar_url: str, uid: str
) -> None:
    async with CalDAVSource(name="home", url=calendar_url) as source:
        first = await source.create_event(
            summary="Call", start=at(2025, 6, 12, 9), end=at(2025, 6, 12, 10), uid=uid
        )
        second = await source.create_event(
            summary="Call", start=at(2025, 6, 12, 9), end=at(2025, 6, 12, 10), uid=uid
        )
        events = await source.events(at(2025, 6, 12), at(2025, 6, 13), BERLIN)

    assert first == second == uid
    assert [e.uid for e in events] == [uid]
    assert radicale.count(calendar_url) == 1


async def test_create_with_a_uid_another_client_stored_elsewhere_is_not_duplicated(
    radicale: Radicale, calendar_url: str
) -> None:
    radicale.put(  # stored under a random resource name, as other clients do
        calendar_url,
        vcalendar(
            """
            UID:shared@example.com
            SUMMARY:From the phone
            DTSTART:20250612T090000Z
            DTEND:20250612T100000Z
            """
        ),
    )
    async with CalDAVSource(name="home", url=calendar_url) as source:
        uid = await source.create_event(
            summary="Again",
            start=at(2025, 6, 12, 9),
            end=at(2025, 6, 12, 10),
            uid="shared@example.com",
        )

    assert uid == "shared@example.com"
    assert radicale.count(calendar_url) == 1


async def test_impossible_events_are_refused_before_any_request(calendar_url: str) -> None:
    source = CalDAVSource(name="home", url=calendar_url)
    with pytest.raises(InvalidEventError, match="no time zone"):
        await source.create_event(
            summary="Naive", start=datetime(2025, 6, 12, 9), end=datetime(2025, 6, 12, 10)
        )
    with pytest.raises(InvalidEventError, match="ends"):
        await source.create_event(summary="Back", start=at(2025, 6, 12, 10), end=at(2025, 6, 12, 9))
    await source.aclose()


async def test_principal_url_is_reported_as_not_a_calendar(
    radicale: Radicale, calendar_url: str
) -> None:
    principal = calendar_url.rsplit("/", 2)[0] + "/"
    source = CalDAVSource(name="home", url=principal)

    with pytest.raises(CalendarConfigError, match="not a calendar collection"):
        await source.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)
    await source.aclose()


async def test_missing_collection_is_a_404_configuration_error(radicale: Radicale) -> None:
    source = CalDAVSource(name="home", url=f"{radicale.base}/alice/no-such-calendar/")

    with pytest.raises(CalendarConfigError, match="HTTP 404"):
        await source.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)
    await source.aclose()


async def test_server_down_is_unavailable_with_connection_refused() -> None:
    source = CalDAVSource(name="home", url=f"http://127.0.0.1:{free_port()}/alice/cal/")

    with pytest.raises(CalendarUnavailable, match="connection refused") as info:
        await source.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)
    assert info.value.retryable
    await source.aclose()


async def test_right_password_reads_and_wrong_password_says_authentication_failed(
    radicale_with_users: Radicale,
) -> None:
    url = radicale_with_users.make_calendar("bob", auth=("bob", "s3cret-pw"))
    async with CalDAVSource(name="bob", url=url, username="bob", password="s3cret-pw") as good:
        await good.create_event(summary="Ok", start=at(2025, 6, 1, 9), end=at(2025, 6, 1, 10))
        assert [e.summary for e in await good.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)] == [
            "Ok"
        ]

    async with CalDAVSource(name="bob", url=url, username="bob", password="wrong-pw") as bad:
        with pytest.raises(CalendarAuthError) as info:
            await bad.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)

    message = str(info.value)
    assert "authentication failed" in message and "HTTP 401" in message
    assert "wrong-pw" not in message and "s3cret" not in message


async def test_credentials_in_the_url_are_used_and_never_shown(
    radicale_with_users: Radicale,
) -> None:
    url = radicale_with_users.make_calendar("bob", auth=("bob", "s3cret-pw"))
    with_password = url.replace("http://", "caldav+http://bob:s3cret-pw@")
    source = source_from_url(with_password, name="bob")
    assert isinstance(source, CalDAVSource)
    assert "s3cret" not in repr(source) and "s3cret" not in source.url
    assert await source.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN) == []
    await source.aclose()

    wrong = source_from_url(url.replace("http://", "http://bob:hunter2@"), name="bob")
    with pytest.raises(CalendarAuthError) as info:
        await wrong.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)
    assert "hunter2" not in str(info.value)


async def test_a_shared_client_is_used_and_left_open(radicale: Radicale, calendar_url: str) -> None:
    async with httpx.AsyncClient() as client:
        source = CalDAVSource(name="home", url=calendar_url.rstrip("/"), client=client)
        assert source.url == calendar_url
        await source.events(at(2025, 6, 1), at(2025, 6, 2), BERLIN)
        await source.aclose()
        assert not client.is_closed
