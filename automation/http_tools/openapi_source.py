"""Where an OpenAPI document comes from: a local file, or an http(s) URL fetched through the guard.

Why the guard for a URL the user typed: the same SSRF rules as every other request apply, but the
policy allows exactly the host in that URL (loopback and private hosts too, since the user named
them); a redirect to any other host is refused, and cloud metadata endpoints always are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from automation.http_tools.errors import OpenApiError
from automation.net import HostPolicy, NetworkError, guarded_request

MAX_BYTES: Final = 10 * 1024 * 1024
"""Largest document read: the biggest public APIs' documents are a few megabytes."""
TIMEOUT: Final = 30.0
"""Seconds for the whole download."""
_ACCEPT: Final = "application/json, application/yaml;q=0.9, text/yaml;q=0.9, */*;q=0.5"


@dataclass(frozen=True, kw_only=True)
class OpenApiSource:
    """A document's text and where it came from."""

    text: str
    location: str
    """For `imported_from`: the absolute file path, or the URL as given."""
    url: str | None = None
    """The address that answered (after redirects), to resolve relative server URLs against."""


def is_url(location: str) -> bool:
    """Does `location` name an http(s) URL rather than a file?"""
    return location.strip().lower().startswith(("http://", "https://"))


def read_file(location: str) -> OpenApiSource:
    """The document in the file `location`.

    Raises:
        OpenApiError: missing, unreadable, too large or not UTF-8.
    """
    path = Path(location).expanduser()
    try:
        if path.stat().st_size > MAX_BYTES:
            raise OpenApiError([f"{location}: larger than {MAX_BYTES // 2**20} MB; not read"])
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise OpenApiError(
            [f"{location}: no such file; give the path of an OpenAPI document or its http(s) URL"]
        ) from None
    except IsADirectoryError:
        raise OpenApiError([f"{location}: is a directory, not an OpenAPI document"]) from None
    except UnicodeDecodeError:
        raise OpenApiError([f"{location}: not UTF-8 text; is it an OpenAPI document?"]) from None
    except OSError as exc:
        raise OpenApiError([f"{location}: cannot read it ({exc.strerror or exc})"]) from None
    return OpenApiSource(text=text, location=str(path.resolve()))


async def fetch(url: str) -> OpenApiSource:
    """The document at `url`, from that host only.

    Raises:
        OpenApiError: refused, unreachable, too slow, too large, or an HTTP error.
    """
    try:
        host = httpx.URL(url.strip()).raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeDecodeError) as exc:
        raise OpenApiError([f"{url!r} is not a valid URL ({exc})"]) from None
    policy = HostPolicy(
        allows=lambda name, _port: name == host,
        names=lambda name, _port: name == host,
        kind="hosts",
        setting="only the host of the URL given to import-openapi",
        verb="fetch",
        done="fetched",
        noun="documents",
    )
    try:
        response = await guarded_request(
            "GET",
            url.strip(),
            policy=policy,
            headers={"Accept": _ACCEPT, "User-Agent": "Dadang/0.1 (import-openapi)"},
            max_bytes=MAX_BYTES,
            time_limit=TIMEOUT,
        )
    except NetworkError as exc:
        raise OpenApiError([f"cannot fetch the document: {exc}"]) from None
    if response.status >= 400:
        hint = (
            "; if it needs a login, download it yourself and import the file"
            if response.status in (401, 403)
            else ""
        )
        raise OpenApiError([f"{url}: HTTP {response.status} {response.reason}{hint}"])
    text = response.body.decode(response.charset or "utf-8", errors="replace")
    return OpenApiSource(text=text.removeprefix("\ufeff"), location=url.strip(), url=response.url)
