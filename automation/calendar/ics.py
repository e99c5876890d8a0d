"""Read-only calendars published as iCalendar files: an http(s)/webcal feed or a local file."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from automation.calendar.closing import AsyncClosing
from automation.calendar.errors import CalendarConfigError, CalendarDataError
from automation.calendar.fetch import MAX_BYTES, SharedClient, check_status, request
from automation.calendar.locations import (
    SourceKind,
    classify,
    display_url,
    file_path,
    split_credentials,
)
from automation.calendar.model import Event
from automation.calendar.parse import parse_events


class IcsSource(AsyncClosing):
    """An ICS feed or file, downloaded whole on every read (feeds have no time-range query).

    Basic-auth credentials may be passed or written into the URL; they are moved out of it.
    """

    def __init__(
        self,
        *,
        name: str,
        location: str,
        username: str | None = None,
        password: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        kind, target = classify(location, source=name)
        if kind is not SourceKind.ICS_FILE:
            target, url_user, url_password = split_credentials(target)
            username = username if username is not None else url_user
            password = password if password is not None else url_password
        self.name = name
        """How the user refers to this calendar; it prefixes every error."""
        self.location = target
        """The http(s) URL (webcal:// mapped to https://, no credentials) or the local path."""
        self._path: Path | None = file_path(target) if kind is SourceKind.ICS_FILE else None
        self._auth = httpx.BasicAuth(username, password or "") if username is not None else None
        self._client = SharedClient(client)
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the credentials
        return f"IcsSource(name={self.name!r}, location={display_url(self.location)!r})"

    async def events(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[Event]:
        """The events overlapping ``[start, end)``, recurrences expanded, times in `tz`.

        Raises:
            CalendarError: the file or URL cannot be read or is not iCalendar (see errors.py).
        """
        data = await self._read()
        return await asyncio.to_thread(
            parse_events, data, source=self.name, start=start, end=end, tz=tz
        )

    async def _read(self) -> bytes:
        if self._path is not None:
            return await asyncio.to_thread(_read_file, self._path, source=self.name)
        reply = await request(
            self._client.get(),
            "GET",
            self.location,
            source=self.name,
            time_limit=self._timeout,
            auth=self._auth,
            headers={"Accept": "text/calendar, */*;q=0.5"},
        )
        check_status(reply, url=self.location, source=self.name)
        return reply.body

    async def aclose(self) -> None:
        """Release the HTTP client if this source made it."""
        await self._client.aclose()


def _read_file(path: Path, *, source: str) -> bytes:
    """The file's bytes, refusing directories and anything over `MAX_BYTES`."""
    try:
        if path.is_dir():
            raise CalendarConfigError(f"{path} is a directory, not an .ics file", source=source)
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise CalendarDataError(
                f"{path} is {size // (1024 * 1024)} MB, over the "
                f"{MAX_BYTES // (1024 * 1024)} MB limit for a calendar file",
                source=source,
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:  # it grew after stat()
            raise CalendarDataError(f"{path} is over the size limit", source=source)
        return data
    except FileNotFoundError as exc:
        raise CalendarConfigError(f"the file {path} does not exist", source=source) from exc
    except OSError as exc:
        raise CalendarConfigError(
            f"cannot read {path} ({exc.strerror or exc})", source=source
        ) from exc
