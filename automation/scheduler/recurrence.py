"""When a reminder fires: one ISO time, a 5-field cron, or an RFC 5545 RRULE, in an IANA zone.

Everything recurring is evaluated in the user's wall-clock time, so "09:00 on weekdays" stays
09:00 across DST changes; a wall-clock time that does not exist (02:30 on spring-forward day)
fires at the first instant after the gap, and one that exists twice fires once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from dateutil.rrule import rrulestr

MIN_INTERVAL = timedelta(minutes=5)
"""Recurrences more frequent than this are refused: a reminder every minute is a bug, not a wish."""

_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_RANGE = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
_RRULE_FREQS = {"MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


class ScheduleError(ValueError):
    """The schedule cannot be used; the message says why in words a user understands."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`.

    Raises:
        ScheduleError: unknown zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name like Asia/Shanghai or Europe/Berlin"
        ) from None


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A validated schedule: exactly one of `at`, `cron`, `rrule`."""

    timezone: str
    at: datetime | None = None
    cron: str | None = None
    rrule: str | None = None
    start: datetime | None = None
    """Where an RRULE starts counting (its DTSTART); the reminder's creation time."""

    @property
    def recurring(self) -> bool:
        """True for cron and RRULE schedules."""
        return self.at is None

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger that fires this schedule."""
        tz = zone(self.timezone)
        if self.at is not None:
            return DateTrigger(run_date=self.at, timezone=tz)
        if self.cron is not None:
            return cron_trigger(self.cron, tz)
        assert self.rrule is not None
        return RRuleTrigger(self.rrule, self.timezone, self.start)

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing strictly after `after` (UTC), or None when there is none."""
        if self.at is not None:
            return self.at if self.at > after else None
        fire = self.trigger().get_next_fire_time(None, after + timedelta(microseconds=1))
        return fire.astimezone(UTC) if fire is not None else None

    def describe(self) -> str:
        """A short human description for listings."""
        if self.at is not None:
            local = self.at.astimezone(zone(self.timezone))
            return f"at {local:%Y-%m-%d %H:%M} ({self.timezone})"
        return f"cron {self.cron} ({self.timezone})" if self.cron else f"{self.rrule}"


def parse_schedule(
    *,
    timezone: str,
    now: datetime,
    at: str | datetime | None = None,
    cron: str | None = None,
    rrule: str | None = None,
) -> Schedule:
    """Validate a schedule given by the model, the CLI or a stored row.

    A naive `at` is wall-clock time in `timezone`. Past times are refused, and so are
    recurrences more frequent than `MIN_INTERVAL` or that never fire.

    Raises:
        ScheduleError: with a message fit to show the user.
    """
    given = [x for x in (at, cron, rrule) if x not in (None, "")]
    if len(given) != 1:
        raise ScheduleError("give exactly one of: a time (at), a cron expression, or an RRULE")
    tz = zone(timezone)
    if at not in (None, ""):
        assert at is not None
        moment = parse_time(at, tz)
        if moment <= now - timedelta(seconds=60):
            local = moment.astimezone(tz)
            raise ScheduleError(
                f"{local:%Y-%m-%d %H:%M} ({timezone}) is in the past; give a future time"
            )
        return Schedule(timezone=timezone, at=moment.astimezone(UTC))
    schedule = Schedule(
        timezone=timezone,
        cron=(cron or "").strip() or None,
        rrule=(rrule or "").strip() or None,
        start=now,
    )
    try:
        first = schedule.next_after(now)
    except ScheduleError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        kind = "cron expression" if schedule.cron else "RRULE"
        raise ScheduleError(f"invalid {kind}: {exc}") from None
    if first is None:
        raise ScheduleError("this recurrence never fires after now")
    second = schedule.next_after(first)
    third = schedule.next_after(second) if second else None
    for a, b in ((first, second), (second, third)):
        if a is not None and b is not None and b - a < MIN_INTERVAL:
            raise ScheduleError(
                f"that repeats every {int((b - a).total_seconds() // 60)} minutes; the shortest "
                f"allowed interval is {int(MIN_INTERVAL.total_seconds() // 60)} minutes"
            )
    return schedule


def parse_time(value: str | datetime, tz: ZoneInfo) -> datetime:
    """An aware datetime from ISO 8601; naive values are wall-clock time in `tz`.

    Raises:
        ScheduleError: not an ISO 8601 date-time.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ScheduleError(
                f"{value!r} is not an ISO 8601 time; use e.g. 2026-11-27T15:00"
            ) from None
    if moment.tzinfo is None:
        moment = wall_clock(moment, tz)
    return moment


def wall_clock(naive: datetime, tz: ZoneInfo) -> datetime:
    """`naive` as a time in `tz`; a time inside a DST gap moves to the first instant after it."""
    moment = naive.replace(tzinfo=tz)
    roundtrip = moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive:  # nonexistent local time: skip forward over the gap
        moment = naive.replace(tzinfo=tz, fold=1).astimezone(UTC).astimezone(tz)
    return moment


def cron_trigger(expression: str, tz: tzinfo) -> CronTrigger:
    """A cron trigger with standard crontab weekdays (0 and 7 = Sunday).

    APScheduler 3 numbers weekdays from Monday = 0, so `1-5` would silently mean Tuesday to
    Saturday; the weekday field is translated to names first.

    Raises:
        ValueError: malformed expression.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekday_names(weekday),
        timezone=tz,
    )


def _weekday_names(field: str) -> str:
    days: set[int] = set()
    for part in field.lower().split(","):
        match = _RANGE.match(part)
        if match is None:
            raise ValueError(f"bad weekday field {field!r}")
        span, step = match.group(1), int(match.group(2) or 1)
        if step < 1:
            raise ValueError(f"bad step in weekday field {field!r}")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-")
            first, last = _weekday(a), _weekday(b)
            if last == 0 and first > 0:
                last = 7
            if first > last:
                raise ValueError(f"bad weekday range {span!r}")
        else:
            first = last = _weekday(span)
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def _weekday(token: str) -> int:
    if token.isdigit():
        value = int(token)
        if not 0 <= value <= 7:
            raise ValueError(f"weekday {value} out of range 0-7")
        return value if value < 7 else 0
    if token[:3] in _WEEKDAYS:
        return _WEEKDAYS.index(token[:3])
    raise ValueError(f"unknown weekday {token!r}")


def _checked_rrule(rule: str) -> str:
    """Reject what dateutil would accept but loop on forever (INTERVAL=0) or that is absurd."""
    parts = dict(p.split("=", 1) for p in rule.upper().split(";") if "=" in p)
    if parts.get("FREQ") not in _RRULE_FREQS:
        raise ValueError(f"FREQ must be one of {', '.join(sorted(_RRULE_FREQS))}")
    interval = parts.get("INTERVAL", "1")
    if not interval.isdigit() or int(interval) < 1:
        raise ValueError("INTERVAL must be a whole number of at least 1")
    if "DTSTART" in rule.upper():
        raise ValueError("give the start as a separate time, not DTSTART inside the rule")
    return rule


class RRuleTrigger(BaseTrigger):  # type: ignore[misc]
    """An RFC 5545 RRULE evaluated in wall-clock time of `timezone` (pickled into the job store).

    DTSTART is midnight of the day it was created, so BYHOUR/BYMINUTE pick the time of day.
    """

    def __init__(self, rule: str, timezone: str, dtstart: datetime | None = None) -> None:
        self.rule = _checked_rrule(rule.removeprefix("RRULE:"))
        self.timezone = timezone
        tz = zone(timezone)
        start = (dtstart or datetime.now(tz)).astimezone(tz)
        self.dtstart = start.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        self._rule = rrulestr(self.rule, dtstart=self.dtstart)

    def __getstate__(self) -> dict[str, object]:
        return {"version": 1, "rule": self.rule, "timezone": self.timezone, "dtstart": self.dtstart}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.rule = str(state["rule"])
        self.timezone = str(state["timezone"])
        start = state["dtstart"]
        assert isinstance(start, datetime)
        self.dtstart = start
        self._rule = rrulestr(self.rule, dtstart=self.dtstart)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        tz = zone(self.timezone)
        base = previous_fire_time or now
        local = base.astimezone(tz).replace(tzinfo=None)
        nxt = self._rule.after(local, inc=previous_fire_time is None)
        while nxt is not None:
            moment = wall_clock(nxt, tz)
            if moment > base or (previous_fire_time is None and moment >= base):
                return moment
            nxt = self._rule.after(nxt, inc=False)
        return None

    def __str__(self) -> str:
        return f"rrule[{self.rule} {self.timezone}]"
