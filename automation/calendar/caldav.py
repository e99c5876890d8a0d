"""A CalDAV calendar collection: read by time-range REPORT, written by conditional PUT.

Speaks the three requests it needs over httpx (RFC 4791) rather than through a CalDAV
library: calendar-query REPORT to read, PROPFIND to tell "empty calendar" from "not a
calendar", and PUT with ``If-None-Match: *`` so creating an event twice never duplicates it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import httpx

from automation.calendar.closing import AsyncClosing
from automation.calendar.compose import event_ics, new_uid
from automation.calendar.errors import CalendarConfigError, CalendarDataError
from automation.calendar.fetch import Reply, SharedClient, check_status, request
from automation.calendar.locations import display_url, split_credentials
from automation.calendar.model import Event
from automation.calendar.parse import parse_events
from automation.calendar.timezones import window
from automation.calendar.webdav import (
    PROPFIND_CALENDAR,
    Resource,
    calendar_query,
    parse_multistatus,
)

log = logging.getLogger(__name__)

_SERVER_MARGIN: Final = timedelta(days=1)
"""Servers match floating and all-day events as if in UTC (RFC 4791 §9.9); asking a day wider
on each side keeps them, and the exact filter in the user's zone runs afterwards."""

_PLAIN_UID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,150}")
_XML: Final = {"Content-Type": "application/xml; charset=utf-8"}


class CalDAVSource(AsyncClosing):
    """One calendar collection, e.g. ``http://127.0.0.1:5232/alice/calendar/``."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        username: str | None = None,
        password: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        clean, url_user, url_password = split_credentials(url)
        username = username if username is not None else url_user
        password = password if password is not None else url_password
        self.name = name
        """How the user refers to this calendar; it prefixes every error."""
        self.url = clean if clean.endswith("/") else f"{clean}/"
        """The collection URL, without credentials, always ending in ``/``."""
        self._auth = httpx.BasicAuth(username, password or "") if username is not None else None
        self._client = SharedClient(client)
        self._timeout = timeout
        self._verified = False

    def __repr__(self) -> str:  # never show the credentials
        return f"CalDAVSource(name={self.name!r}, url={display_url(self.url)!r})"

    async def events(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[Event]:
        """The events overlapping ``[start, end)``, recurrences expanded, times in `tz`.

        Raises:
            CalendarError: the server is unreachable, refuses the credentials, or the URL is
                not a calendar collection (see errors.py).
        """
        start, end = window(start, end, tz)
        if end <= start:
            return []
        reply = await self._send(
            "REPORT",
            self.url,
            headers={**_XML, "Depth": "1"},
            content=calendar_query(start - _SERVER_MARGIN, end + _SERVER_MARGIN),
        )
        resources = self._multistatus(reply, what="calendar query")
        if not resources:
            # A principal or home-set URL answers with an empty multistatus too.
            await self._ensure_calendar()
        texts = [r.calendar_data for r in resources if r.calendar_data]
        return await asyncio.to_thread(self._parse, texts, start, end, tz)

    def _parse(self, texts: list[str], start: datetime, end: datetime, tz: ZoneInfo) -> list[Event]:
        events: list[Event] = []
        for text in texts:
            try:
                events.extend(
                    parse_events(text.encode(), source=self.name, start=start, end=end, tz=tz)
                )
            except CalendarDataError as exc:  # one unreadable resource must not hide the rest
                log.warning("%s (one resource skipped)", exc)
        events.sort(key=lambda e: (e.start, e.end, e.summary, e.uid))
        return events

    async def _ensure_calendar(self) -> None:
        if self._verified:
            return
        reply = await self._send(
            "PROPFIND", self.url, headers={**_XML, "Depth": "0"}, content=PROPFIND_CALENDAR
        )
        if not any(r.is_calendar for r in self._multistatus(reply, what="PROPFIND")):
            raise CalendarConfigError(
                f"{display_url(self.url)} is not a calendar collection; use the URL of one "
                "calendar (for Radicale: http://HOST:5232/USER/CALENDAR-ID/)",
                source=self.name,
            )
        self._verified = True

    def _multistatus(self, reply: Reply, *, what: str) -> list[Resource]:
        check_status(reply, url=self.url, source=self.name)
        try:
            return parse_multistatus(reply.body)
        except ValueError as exc:
            raise CalendarDataError(
                f"the answer to the {what} is not CalDAV ({exc}); is "
                f"{display_url(self.url)} a CalDAV calendar URL?",
                source=self.name,
            ) from exc

    async def create_event(
        self,
        *,
        summary: str,
        start: datetime,
        end: datetime,
        all_day: bool = False,
        location: str | None = None,
        description: str | None = None,
        uid: str | None = None,
    ) -> str:
        """Store a new event and return its UID; with an existing UID, change nothing.

        The resource name derives from the UID, and ``If-None-Match: *`` makes the server
        refuse to overwrite, so a retried create (after a timeout, say) never duplicates.

        Raises:
            InvalidEventError: naive times, an end before the start, an empty summary.
            CalendarError: the server is unreachable or refuses the write.
        """
        uid = uid or new_uid()
        body = event_ics(
            uid=uid,
            summary=summary,
            start=start,
            end=end,
            all_day=all_day,
            location=location,
            description=description,
            source=self.name,
        )
        url = self.url + resource_name(uid)
        reply = await self._send(
            "PUT",
            url,
            headers={"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"},
            content=body,
        )
        if reply.status == 412:  # this resource exists: the same UID was created before
            return uid
        if reply.status in (403, 409) and b"no-uid-conflict" in reply.body:
            return uid  # the UID exists under another resource name (made by another client)
        check_status(reply, url=url, source=self.name)
        return uid

    async def _send(
        self, method: str, url: str, *, headers: dict[str, str], content: bytes
    ) -> Reply:
        return await request(
            self._client.get(),
            method,
            url,
            source=self.name,
            time_limit=self._timeout,
            auth=self._auth,
            headers=headers,
            content=content,
        )

    async def aclose(self) -> None:
        """Release the HTTP client if this source made it."""
        await self._client.aclose()


def resource_name(uid: str) -> str:
    """The file name for an event in the collection: the UID itself when it is URL-safe.

    Otherwise a hash of it, so the name is still the same every time for the same UID.
    """
    if _PLAIN_UID.fullmatch(uid):
        return f"{uid}.ics"
    return f"{hashlib.sha256(uid.encode()).hexdigest()[:40]}.ics"
