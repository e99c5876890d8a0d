"""Schedules fire at the right wall-clock time, across DST changes, with cron's own weekdays.

The clock is controlled: each step asks the production trigger for the next firing after a
simulated "now", exactly as the scheduler does.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from automation.scheduler.recurrence import RRuleTrigger, ScheduleError, parse_schedule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _firings(schedule, start: datetime, count: int) -> list[datetime]:
    out, now = [], start
    for _ in range(count):
        now = schedule.next_after(now)
        out.append(now)
    return out


def test_weekday_cron_uses_crontab_weekdays_and_keeps_nine_oclock_across_spring_forward() -> None:
    # Berlin moves to CEST on Sunday 2027-03-28.
    now = datetime(2027, 3, 24, 12, tzinfo=UTC)
    schedule = parse_schedule(timezone="Europe/Berlin", now=now, cron="0 9 * * 1-5")
    firings = [f.astimezone(BERLIN) for f in _firings(schedule, now, 6)]
    assert [f.strftime("%a %H:%M") for f in firings] == [
        "Thu 09:00",
        "Fri 09:00",
        "Mon 09:00",
        "Tue 09:00",
        "Wed 09:00",
        "Thu 09:00",
    ]
    assert firings[1].utcoffset() == timedelta(hours=1)
    assert firings[2].utcoffset() == timedelta(hours=2)  # same wall-clock time, new offset


def test_nonexistent_and_ambiguous_local_times() -> None:
    # 02:30 does not exist on 2027-03-28 in Berlin: it fires at 03:30 CEST, once.
    now = datetime(2027, 3, 26, 12, tzinfo=UTC)
    schedule = parse_schedule(timezone="Europe/Berlin", now=now, cron="30 2 * * *")
    local = [f.astimezone(BERLIN) for f in _firings(schedule, now, 3)]
    assert [f"{f:%d %H:%M}" for f in local] == ["27 02:30", "28 03:30", "29 02:30"]
    # 01:30 happens twice on 2027-11-07 in New York: it fires once.
    now = datetime(2027, 11, 5, 12, tzinfo=UTC)
    rule = parse_schedule(
        timezone="America/New_York", now=now, rrule="FREQ=DAILY;BYHOUR=1;BYMINUTE=30"
    )
    local = [f.astimezone(NEW_YORK) for f in _firings(rule, now, 3)]
    assert [f"{f:%d %H:%M}" for f in local] == ["06 01:30", "07 01:30", "08 01:30"]


def test_weekly_rrule_across_fall_back_and_pickling() -> None:
    now = datetime(2027, 10, 20, 12, tzinfo=UTC)  # Berlin falls back on 2027-10-31
    schedule = parse_schedule(
        timezone="Europe/Berlin", now=now, rrule="FREQ=WEEKLY;BYDAY=FR;BYHOUR=17;BYMINUTE=0"
    )
    local = [f.astimezone(BERLIN) for f in _firings(schedule, now, 3)]
    assert [f"{f:%m-%d %H:%M %z}" for f in local] == [
        "10-22 17:00 +0200",
        "10-29 17:00 +0200",
        "11-05 17:00 +0100",
    ]
    trigger = schedule.trigger()
    assert isinstance(trigger, RRuleTrigger)
    restored = pickle.loads(pickle.dumps(trigger))  # what the job store does
    assert restored.get_next_fire_time(None, now) == trigger.get_next_fire_time(None, now)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": "2027-01-01T08:00"}, "in the past"),
        ({"cron": "*/0 * * * *"}, "invalid cron"),
        ({"cron": "*/2 * * * *"}, "every 2 minutes"),
        ({"rrule": "FREQ=MINUTELY;INTERVAL=0"}, "INTERVAL"),
        ({"rrule": "FREQ=SECONDLY"}, "FREQ"),
        ({"cron": "0 9 31 2 *"}, "never fires"),
        ({"at": "next friday"}, "not an ISO 8601"),
        ({}, "exactly one"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(timezone="Asia/Shanghai", now=datetime(2027, 1, 2, tzinfo=UTC), **kwargs)


def test_unknown_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule(timezone="Asia/Atlantis", now=datetime.now(UTC), cron="0 9 * * *")
