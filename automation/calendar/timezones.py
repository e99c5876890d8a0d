"""How times without a zone are read: in the zone of the query, the user's local time.

A floating ``DTSTART:20250325T090000`` means "09:00 wherever you are", and an all-day event
is a local date; both only become instants once the user's zone is known, which is why every
read takes a `tz`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def localize(value: date, tz: ZoneInfo) -> datetime:
    """An aware datetime in `tz`: dates become local midnight, naive times local times."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=tz)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=tz)
    return value.astimezone(tz)


def window(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The query bounds as aware times in `tz` (naive bounds are read as local time)."""
    return localize(start, tz), localize(end, tz)
