"""Opening a server's SDK transport (a subprocess over stdio, or streamable HTTP), and
describing its failures in words that say what to fix, without the bearer secret.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TextIO

import httpx2
from mcp.client import Transport
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from automation.http_tools.tool import SecretResolver
from automation.mcp.config import McpServerConfig
from automation.mcp.errors import McpError, McpStartError

CONNECT_TIMEOUT: Final = 10.0
"""Seconds to open a TCP connection to an HTTP server (startup_timeout bounds the whole start)."""
READ_TIMEOUT: Final = 300.0
"""Seconds an HTTP response stream may stay silent; calls are bounded by their own timeout."""
_HEADERS: Final = {"User-Agent": "Dadang/0.1 (personal assistant; mcp client)"}
_FIX = "check the [[mcp_servers]] table in dadang.toml"


@dataclass
class HttpTrace:
    """The last HTTP error status a server answered, so a failed start can name it."""

    status: int | None = None


def open_transport(
    config: McpServerConfig,
    *,
    secret: str | None,
    trace: HttpTrace,
    errlog: TextIO | None = None,
) -> Transport:
    """The SDK transport for `config`; enter it in the task that will also exit it."""
    if config.command is not None:
        params = StdioServerParameters(
            command=config.command[0],
            args=config.command[1:],
            env=dict(config.env) or None,
            cwd=config.cwd,
        )
        return stdio_client(params, errlog=errlog or _stderr())
    assert config.url is not None  # McpServerConfig holds exactly one of command and url
    return _http(config.url, headers=_headers(config, secret), trace=trace)


def _stderr() -> TextIO:
    """Our stderr for the server's, or the process's real one when `sys.stderr` was replaced
    by something without a file descriptor (a test runner's capture, an embedding host)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__ or sys.stderr
    return sys.stderr


@asynccontextmanager
async def _http(url: str, *, headers: dict[str, str], trace: HttpTrace) -> AsyncIterator[Any]:
    async def note_status(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            trace.status = response.status_code

    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(CONNECT_TIMEOUT, read=READ_TIMEOUT),
        event_hooks={"response": [note_status]},
    )
    async with http, streamable_http_client(url, http_client=http) as streams:
        yield streams


def _headers(config: McpServerConfig, secret: str | None) -> dict[str, str]:
    headers = {**_HEADERS, **config.headers}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return headers


async def fetch_secret(
    config: McpServerConfig, *, resolve: SecretResolver | None, owner: int | None
) -> str | None:
    """The owner's secret named by `bearer_secret` (None without one).

    Raises:
        McpStartError: the secret is not set (or cannot be read); the message says how to set it.
    """
    name = config.bearer_secret
    if name is None:
        return None
    unset = f"MCP server {config.name!r}: secret {name} is not set; run: dadang secrets set {name}"
    if resolve is None or owner is None:
        raise McpStartError(unset)
    try:
        value = await resolve(owner, name)
    except Exception:  # the store's own message could say more, but "set it" is the fix
        raise McpStartError(unset) from None
    if not value:
        raise McpStartError(unset)
    return value


def describe(
    exc: BaseException, config: McpServerConfig, *, trace: HttpTrace, secret: str | None
) -> str:
    """One line on why the server failed, with the fix when there is an obvious one."""
    leaf = _leaf(exc)
    where = f"MCP server {config.name!r}"
    if isinstance(leaf, McpError):
        text = str(leaf)
    elif isinstance(leaf, FileNotFoundError) and config.command is not None:
        text = f"{where}: command {config.command[0]!r} was not found; {_FIX}"
    elif isinstance(leaf, PermissionError) and config.command is not None:
        text = f"{where}: command {config.command[0]!r} is not executable; {_FIX}"
    elif trace.status in (401, 403):
        hint = "the secret named by `bearer_secret`" if config.bearer_secret else "`headers`"
        text = f"{where}: {config.url} answered HTTP {trace.status}; check {hint}"
    elif trace.status is not None:
        text = f"{where}: {config.url} answered HTTP {trace.status}"
    elif isinstance(leaf, httpx2.TransportError):
        text = f"{where}: cannot reach {config.url} ({leaf or type(leaf).__name__})"
    else:
        text = f"{where}: {leaf or type(leaf).__name__}"
    return scrub(text, secret)


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def scrub(text: str, secret: str | None) -> str:
    """`text` without the secret, should a library have quoted a header."""
    return text.replace(secret, "***") if secret else text
