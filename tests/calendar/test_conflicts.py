"""Conflict detection: real double bookings only, found by one sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from automation.calendar import Event, IcsSource, find_conflicts
from tests.calendar.ics_data import DESIGN_REVIEW_AND_DENTIST

BERLIN = ZoneInfo("Europe/Berlin")


def event(
    summary: str,
    start: tuple[int, int],
    end: tuple[int, int],
    *,
    day: int = 10,
    all_day: bool = False,
    transparent: bool = False,
    calendar: str = "work",
    uid: str | None = None,
) -> Event:
    return Event(
        uid=uid or summary,
        summary=summary,
        start=datetime(2025, 6, day, *start, tzinfo=BERLIN),
        end=datetime(2025, 6, day, *end, tzinfo=BERLIN),
        all_day=all_day,
        calendar=calendar,
        transparent=transparent,
    )


def test_overlapping_meetings_conflict_for_the_overlap() -> None:
    a = event("Planning", (10, 0), (11, 0))
    b = event("1:1", (10, 30), (11, 30))

    [conflict] = find_conflicts([b, a])

    assert (conflict.first, conflict.second) == (a, b)
    assert conflict.start == datetime(2025, 6, 10, 10, 30, tzinfo=BERLIN)
    assert conflict.end == datetime(2025, 6, 10, 11, 0, tzinfo=BERLIN)
    assert conflict.duration == timedelta(minutes=30)
    assert a.overlaps(b) and b.overlaps(a)


def test_back_to_back_meetings_do_not_conflict() -> None:
    a = event("Planning", (10, 0), (11, 0))
    b = event("Review", (11, 0), (12, 0))

    assert find_conflicts([a, b]) == []
    assert not a.overlaps(b)


def test_all_day_events_do_not_conflict_with_meetings_unless_asked() -> None:
    holiday = Event(
        uid="h",
        summary="Holiday",
        start=datetime(2025, 6, 10, tzinfo=BERLIN),
        end=datetime(2025, 6, 11, tzinfo=BERLIN),
        all_day=True,
        calendar="holidays",
    )
    trip = Event(
        uid="t",
        summary="Trip",
        start=datetime(2025, 6, 9, tzinfo=BERLIN),
        end=datetime(2025, 6, 12, tzinfo=BERLIN),
        all_day=True,
        calendar="personal",
    )
    meeting = event("Planning", (10, 0), (11, 0))

    assert find_conflicts([holiday, trip, meeting]) == []
    included = find_conflicts([holiday, trip, meeting], include_all_day=True)
    assert {(c.first.summary, c.second.summary) for c in included} == {
        ("Trip", "Holiday"),
        ("Trip", "Planning"),
        ("Holiday", "Planning"),
    }


def test_transparent_and_zero_length_events_block_no_time() -> None:
    meeting = event("Planning", (10, 0), (11, 0))
    wfh = event("Working from home", (8, 0), (17, 0), transparent=True)
    deadline = event("Report due", (10, 30), (10, 30))

    assert find_conflicts([meeting, wfh, deadline]) == []


def test_every_pair_of_a_triple_booking_is_reported_in_order_of_overlap() -> None:
    long = event("Workshop", (9, 0), (17, 0))
    a = event("Call", (10, 0), (11, 0))
    b = event("Lunch", (12, 0), (13, 0))
    c = event("Interview", (12, 30), (13, 30))

    conflicts = find_conflicts([c, b, a, long])

    assert len(conflicts) == 4
    assert {(x.first.summary, x.second.summary) for x in conflicts} == {
        ("Workshop", "Call"),
        ("Workshop", "Lunch"),
        ("Workshop", "Interview"),
        ("Lunch", "Interview"),
    }
    assert [x.start for x in conflicts] == sorted(x.start for x in conflicts)


def test_same_invitation_in_two_calendars_is_not_a_conflict() -> None:
    work = event("All hands", (15, 0), (16, 0), calendar="work", uid="allhands@corp")
    personal = event("All hands", (15, 0), (16, 0), calendar="personal", uid="allhands@corp")

    assert find_conflicts([work, personal]) == []


async def test_recurring_review_occurrence_conflicts_with_a_single_dentist_visit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cal.ics"
    path.write_text(DESIGN_REVIEW_AND_DENTIST)
    source = IcsSource(name="work", location=str(path))
    events = await source.events(
        datetime(2025, 6, 2, tzinfo=BERLIN), datetime(2025, 6, 16, tzinfo=BERLIN), BERLIN
    )

    [conflict] = find_conflicts(events)

    assert conflict.first.summary == "Design review"
    assert conflict.first.recurrence_id is not None
    assert conflict.second.summary == "Dentist"
    assert conflict.start == datetime(2025, 6, 12, 14, 30, tzinfo=BERLIN)
    assert conflict.end == datetime(2025, 6, 12, 15, 0, tzinfo=BERLIN)
    assert len([e for e in events if e.summary == "Design review"]) == 4
