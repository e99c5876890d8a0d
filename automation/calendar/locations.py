"""Where a calendar lives: which kind of source a location string means, and how to show it.

The rule used by `source_from_url` (first match wins):

1. ``caldav+http://…`` / ``caldav+https://…``: a CalDAV calendar collection (prefix dropped).
2. ``webcal://…`` / ``webcals://…``: an ICS feed, fetched over https (what calendar apps do).
3. ``file://…`` or anything without a scheme (``~/cal.ics``, ``C:\\cal.ics``): a local ICS file.
4. ``http(s)://…`` whose path ends in ``.ics``: an ICS feed.
5. ``http(s)://…`` whose path ends in ``/``: a CalDAV calendar collection.
6. any other ``http(s)://…``: an ICS feed (export links such as ``…/export?format=ical``
   are far more common than CalDAV collections written without their trailing slash).

Any other scheme is a configuration error.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from automation.calendar.errors import CalendarConfigError


class SourceKind(StrEnum):
    """How a calendar is read."""

    CALDAV = "caldav"
    ICS_HTTP = "ics-http"
    ICS_FILE = "ics-file"


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def classify(location: str, *, source: str | None = None) -> tuple[SourceKind, str]:
    """The kind of source and the location to hand it (URL with its real scheme, or a path).

    Raises:
        CalendarConfigError: the scheme is not one a calendar can be read from, or the URL is
            malformed; `source` (default: a name derived from the location) names it.
    """
    location = location.strip()
    source = source or default_name(location)
    match = _SCHEME.match(location)
    if match is None or _WINDOWS_DRIVE.match(location):
        return SourceKind.ICS_FILE, location
    scheme = match.group(1).lower()
    rest = location[match.end() :]
    if scheme in ("caldav+http", "caldav+https"):
        return SourceKind.CALDAV, f"{scheme.removeprefix('caldav+')}://{rest}"
    if scheme in ("webcal", "webcals"):
        return SourceKind.ICS_HTTP, f"https://{rest}"
    if scheme == "file":
        return SourceKind.ICS_FILE, location
    if scheme in ("http", "https"):
        try:
            path = urlsplit(location).path
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise CalendarConfigError(
                f"{display_url(location)!r} is not a valid URL ({exc})", source=source
            ) from exc
        if path.lower().endswith(".ics"):
            return SourceKind.ICS_HTTP, location
        if path.endswith("/"):
            return SourceKind.CALDAV, location
        return SourceKind.ICS_HTTP, location
    raise CalendarConfigError(
        f"unsupported location scheme {scheme!r}; use http(s)://, webcal://, "
        "caldav+http(s)://, file:// or a file path",
        source=source,
    )


def file_path(location: str) -> Path:
    """The local path for a ``file://`` URL or a plain path (``~`` expanded)."""
    if location.lower().startswith("file://"):
        parts = urlsplit(location)
        return Path(url2pathname(parts.path))
    return Path(location).expanduser()


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Move ``user:password@`` out of a URL, so it is sent as basic auth and never logged.

    Works on the text rather than on parsed ports and hosts, so a malformed URL keeps its
    (malformed) host for httpx to reject with a clear error, but still loses its password.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url, None, None
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url, None, None
    username, colon, password = userinfo.partition(":")
    clean = f"{scheme}://{host}{tail}"
    return clean, unquote(username), unquote(password) if colon else None


def display_url(url: str) -> str:
    """The URL as shown in messages: no user info and no query string (feeds put tokens there)."""
    clean = split_credentials(url)[0]
    return clean.split("?", 1)[0].split("#", 1)[0]


def default_name(location: str) -> str:
    """A readable name for a source nobody named: the file's stem or the URL's last segment."""
    if _SCHEME.match(location) is None or location.lower().startswith("file://"):
        return file_path(location).stem or location
    authority, _, path = display_url(location).partition("://")[2].partition("/")
    segments = [s for s in path.split("/") if s]
    if segments:
        return unquote(segments[-1]).removesuffix(".ics")
    return authority or location
