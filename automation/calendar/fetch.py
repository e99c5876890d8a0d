"""The HTTP edge: one bounded request, with httpx failures translated to calendar errors.

Why bounded: a calendar URL is user configuration, and a wrong one can point at a video, a
slow-dripping server or a gzip bomb. The body is read in decoded chunks and cut off at
`MAX_BYTES`, and the whole exchange, not only each read, must finish within the timeout.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Final

import httpx

from automation.calendar.errors import (
    CalendarAuthError,
    CalendarConfigError,
    CalendarDataError,
    CalendarError,
    CalendarUnavailable,
)
from automation.calendar.locations import display_url

MAX_BYTES: Final = 10 * 1024 * 1024
"""Largest calendar body accepted (10 MB); real personal calendars are far below it."""


class SharedClient:
    """The httpx client a source uses: the caller's, or one of its own made on first use.

    Why: many sources can share one connection pool the application owns (and closes), while a
    source built alone still works and cleans up after itself in `aclose()`.
    """

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._client = client
        self._owned = client is None

    def get(self) -> httpx.AsyncClient:
        """The client, created now if the source owns it and has none yet."""
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        """Close the client if the source made it; a caller's client is the caller's to close."""
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A complete HTTP response: its status and decoded body."""

    status: int
    body: bytes


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    time_limit: float,
    auth: httpx.Auth | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    max_bytes: int = MAX_BYTES,
) -> Reply:
    """Send one request and read the whole body, whatever the status.

    Raises:
        CalendarUnavailable: connection refused, DNS failure, timeout, or another transport error.
        CalendarDataError: the body is larger than `max_bytes`.
    """
    shown = display_url(url)
    try:
        async with asyncio.timeout(time_limit):
            return await _exchange(
                client,
                method,
                url,
                source=source,
                time_limit=time_limit,
                auth=auth,
                headers=headers,
                content=content,
                max_bytes=max_bytes,
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise CalendarUnavailable(
            f"{shown} did not answer within {time_limit:g} s; is the server overloaded or down?",
            source=source,
        ) from exc
    except httpx.ConnectError as exc:
        raise CalendarUnavailable(
            f"cannot connect to {shown} ({_reason(exc)}); is the server running and the URL right?",
            source=source,
        ) from exc
    except httpx.InvalidURL as exc:
        raise CalendarConfigError(f"{shown} is not a valid URL ({exc})", source=source) from exc
    except httpx.TooManyRedirects as exc:
        raise CalendarConfigError(f"{shown} redirects in a loop", source=source) from exc
    except httpx.HTTPError as exc:
        raise CalendarUnavailable(
            f"request to {shown} failed ({type(exc).__name__}: {_reason(exc)})", source=source
        ) from exc


async def _exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    time_limit: float,
    auth: httpx.Auth | None,
    headers: dict[str, str] | None,
    content: bytes | None,
    max_bytes: int,
) -> Reply:
    # No auth of our own: leave whatever the caller configured on a shared client in force.
    request_auth = auth if auth is not None else httpx.USE_CLIENT_DEFAULT
    async with client.stream(
        method,
        url,
        auth=request_auth,
        headers=headers,
        content=content,
        timeout=time_limit,
        follow_redirects=True,
    ) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(url, source=source, max_bytes=max_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(url, source=source, max_bytes=max_bytes)
            chunks.append(chunk)
        return Reply(status=response.status_code, body=b"".join(chunks))


def _too_large(url: str, *, source: str, max_bytes: int) -> CalendarDataError:
    return CalendarDataError(
        f"{display_url(url)} sent more than {max_bytes // (1024 * 1024)} MB; "
        "that is not a personal calendar (check the URL)",
        source=source,
    )


def _reason(exc: BaseException) -> str:
    """The root cause in words: anyio reports a refused connection as "all attempts failed"."""
    cause: BaseException | None = exc
    for _ in range(20):  # chains are short; the bound only guards against a cycle
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    return "connection refused" if "refused" in text.lower() else text or type(exc).__name__


def check_status(reply: Reply, *, url: str, source: str) -> None:
    """Turn an HTTP error status into the calendar error that says what to fix.

    Raises:
        CalendarAuthError: 401 or 403.
        CalendarConfigError: 404, 405 and other 4xx (the URL or request does not fit).
        CalendarUnavailable: 5xx (the server failed; retry later).
    """
    status = reply.status
    shown = display_url(url)
    error: CalendarError
    if status < 400:
        return
    if status == 401:
        error = CalendarAuthError(
            f"authentication failed at {shown} (HTTP 401); check the username and password",
            source=source,
        )
    elif status == 403:
        error = CalendarAuthError(
            f"access denied to {shown} (HTTP 403); this account may not use that calendar",
            source=source,
        )
    elif status == 404:
        error = CalendarConfigError(
            f"{shown} does not exist (HTTP 404); check the URL", source=source
        )
    elif status < 500:
        error = CalendarConfigError(f"{shown} rejected the request (HTTP {status})", source=source)
    else:
        error = CalendarUnavailable(
            f"the server at {shown} failed (HTTP {status}); try again later", source=source
        )
    raise error
