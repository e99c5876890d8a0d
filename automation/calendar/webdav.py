"""The few WebDAV/CalDAV XML documents this package sends and reads (RFC 4918, RFC 4791).

The server's XML is parsed with the standard library: its expat rejects entity-expansion
attacks, and the document comes from a server the user configured.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

DAV: Final = "DAV:"
CALDAV: Final = "urn:ietf:params:xml:ns:caldav"

PROPFIND_CALENDAR: Final = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:displayname/></D:prop></D:propfind>
"""


def calendar_query(start: datetime, end: datetime) -> bytes:
    """A REPORT body asking for every VEVENT resource that overlaps ``[start, end)``.

    The server applies the time range to whole series (RFC 4791 §9.9), so a recurring event
    comes back once, master and overrides together, for expansion on our side.
    """
    return f"""<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:time-range start="{_utc(start)}" end="{_utc(end)}"/>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
""".encode()


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One ``<response>`` of a multistatus: its href and the properties the server returned."""

    href: str
    calendar_data: str | None = None
    is_calendar: bool = False
    display_name: str | None = None


def parse_multistatus(body: bytes) -> list[Resource]:
    """The resources in a 207 Multi-Status body; properties with a non-200 status are ignored.

    Raises:
        ValueError: the body is not a DAV multistatus document.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"the server's XML cannot be parsed ({exc})") from exc
    if root.tag != f"{{{DAV}}}multistatus":
        raise ValueError(f"expected a DAV multistatus document, got <{root.tag}>")
    resources: list[Resource] = []
    for response in root.iter(f"{{{DAV}}}response"):
        href = (response.findtext(f"{{{DAV}}}href") or "").strip()
        data: str | None = None
        is_calendar = False
        display_name: str | None = None
        for propstat in response.iter(f"{{{DAV}}}propstat"):
            status = propstat.findtext(f"{{{DAV}}}status") or ""
            if " 200 " not in f"{status} ":
                continue
            prop = propstat.find(f"{{{DAV}}}prop")
            if prop is None:
                continue
            data = prop.findtext(f"{{{CALDAV}}}calendar-data") or data
            kinds = prop.find(f"{{{DAV}}}resourcetype")
            if kinds is not None and kinds.find(f"{{{CALDAV}}}calendar") is not None:
                is_calendar = True
            display_name = prop.findtext(f"{{{DAV}}}displayname") or display_name
        resources.append(
            Resource(
                href=href, calendar_data=data, is_calendar=is_calendar, display_name=display_name
            )
        )
    return resources
