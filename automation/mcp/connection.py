"""`McpConnection`: one MCP server's session, owned by one long-running task.

The SDK's context managers (the server process, the HTTP client, their task groups) are anyio
scopes that must be entered and exited by the same task, so a supervisor task owns them for the
server's whole life and callers hand it calls through a `CallQueue`. When the server dies or the
HTTP session drops, the calls in flight fail at once (not after their timeout) and the
supervisor reconnects in the background, waiting 1 s, 2 s, 4 s … up to 30 s between attempts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Final, TextIO

import anyio
from mcp import Client
from mcp_types import CallToolResult, Implementation
from mcp_types import Tool as McpToolInfo

from automation.http_tools.tool import SecretResolver
from automation.mcp.calls import CallQueue
from automation.mcp.config import McpServerConfig
from automation.mcp.errors import McpCallError, McpServerLost, McpStartError
from automation.mcp.transport import HttpTrace, describe, fetch_secret, open_transport, scrub

log = logging.getLogger(__name__)

FIRST_DELAY: Final = 1.0
MAX_DELAY: Final = 30.0
"""Restart backoff: 1 s after a crash, doubling while restarts fail, never above 30 s."""
RECONNECT_WAIT: Final = 5.0
"""A call arriving during a restart waits this long (at most its timeout) for the server."""
CLOSE_WAIT: Final = 10.0
"""Seconds `close` waits for a clean shutdown (stdio: close stdin, 2 s, SIGTERM, 2 s, SIGKILL)."""
MAX_PAGES: Final = 50
"""`tools/list` pages read; a server that paginates forever cannot hang the start."""
_CLIENT = Implementation(name="dadang", version="0.1.0")


class McpConnection:
    """Starts, serves and restarts one server; `call` is safe from any task."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        resolve_secret: SecretResolver | None = None,
        owner_user_id: int | None = None,
        errlog: TextIO | None = None,
    ) -> None:
        self.config = config
        self.tools: list[McpToolInfo] = []
        """The tools listed at the first connect (the registry is built once)."""
        self.connected = False
        self.last_error: str | None = None
        self.restarts = 0
        """Restart attempts since the service started."""
        self._resolve_secret = resolve_secret
        self._owner = owner_user_id
        self._errlog = errlog
        self._secret: str | None = None
        self._trace = HttpTrace()
        self._ever_up = False
        self._live = False
        self._closing = False
        self._serving = False
        self._task: asyncio.Task[None] | None = None
        self._calls: CallQueue | None = None
        self._up = asyncio.Event()
        self._settled = asyncio.Event()
        self._stop: anyio.Event | None = None

    @property
    def name(self) -> str:
        """The configured server name."""
        return self.config.name

    async def start(self) -> str | None:
        """Connect and list the tools within `startup_timeout`; the error line if that failed.

        A server that never came up is not retried: its tools were never offered.
        """
        self._calls = CallQueue(self.name, scrub=lambda text: scrub(text, self._secret))
        self._stop = anyio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")
        await self._settled.wait()
        if self.connected:
            return None
        return self.last_error or f"MCP server {self.name!r} did not start"

    async def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        """Run the server's tool `name`, bounded by the configured timeout.

        Raises:
            McpServerLost: the server stopped during the call, or is still restarting.
            McpCallTimeout: no answer within `timeout`.
            McpCallError: the server is not running, or refused the call.
        """
        where = f"MCP server {self.name!r}"
        if self._calls is None or self._closing or self._task is None or self._task.done():
            raise McpCallError(f"{where} is not running ({self.last_error or 'stopped'})")
        if not self.connected:
            try:
                async with asyncio.timeout(min(RECONNECT_WAIT, self.config.timeout)):
                    await self._up.wait()
            except TimeoutError:
                raise McpServerLost(
                    f"{where} stopped and is being restarted; try again in a few seconds"
                ) from None
        return await self._calls.submit(name, arguments, time_limit=self.config.timeout)

    def status(self) -> dict[str, Any]:
        """Transport, connected, tools listed, restart attempts and the last error."""
        return {
            "transport": self.config.transport,
            "connected": self.connected,
            "tools": len(self.tools),
            "restarts": self.restarts,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        """Stop the server (or the HTTP session) and wait until its task is gone."""
        self._closing = True
        task = self._task
        if task is not None:
            if not task.done():
                await self._stop_task(task)
            await asyncio.gather(task, return_exceptions=True)  # retrieve a crash, if any
        if self._calls is not None:
            self._calls.dispose()

    async def _stop_task(self, task: asyncio.Task[None]) -> None:
        if self._serving:
            assert self._calls is not None
            assert self._stop is not None
            self._calls.close()  # the serving loop ends; the session exits in its own task
            self._stop.set()
        else:
            task.cancel()  # connecting, or waiting to restart: nothing to finish
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except asyncio.CancelledError:
            if not task.done():
                raise

    async def _supervise(self) -> None:
        try:
            await self._keep_running()
        finally:
            self._settled.set()  # `start` must return whatever happened

    async def _keep_running(self) -> None:
        delay = FIRST_DELAY
        while True:
            self._live = False
            error: str | None = None
            try:
                await self._session()
            except Exception as exc:  # anything the process, the network or the SDK throws
                error = describe(exc, self.config, trace=self._trace, secret=self._secret)
            finally:
                self._down()
            if self._closing:
                return
            if error is None and self._live:
                error = f"MCP server {self.name!r} stopped"
            if error is not None:
                self.last_error = error
                log.warning("%s", error)
            if not self._ever_up:
                return  # never came up: its tools were never offered, nothing to restart for
            delay = FIRST_DELAY if self._live else min(delay * 2, MAX_DELAY)
            self.restarts += 1
            log.info("restarting MCP server %r in %g s", self.name, delay)
            assert self._stop is not None
            with anyio.move_on_after(delay):
                await self._stop.wait()
            if self._closing:
                return

    async def _session(self) -> None:
        """One connection, from start to loss or shutdown (`_live` says whether it came up)."""
        self._trace = HttpTrace()
        self._secret = await fetch_secret(
            self.config, resolve=self._resolve_secret, owner=self._owner
        )
        transport = open_transport(
            self.config, secret=self._secret, trace=self._trace, errlog=self._errlog
        )
        deadline = anyio.current_time() + self.config.startup_timeout
        # One scope for the whole session, its deadline lifted once up: a `fail_after` around
        # the start alone would have to exit while the SDK's task groups are still open.
        with anyio.CancelScope(deadline=deadline) as scope:
            async with Client(transport, cache=None, client_info=_CLIENT) as client:
                listed = await _list_tools(client)
                scope.deadline = math.inf
                self._live = True
                if not self._ever_up:
                    self.tools, self._ever_up = listed, True
                self.connected = True
                self._up.set()
                self._settled.set()
                log.info("MCP server %r is up with %d tools", self.name, len(listed))
                assert self._calls is not None
                self._serving = True
                try:
                    await self._calls.serve(client, lost=self._lost)
                finally:
                    self._serving = False
        if not self._live and scope.cancelled_caught:
            raise McpStartError(
                f"MCP server {self.name!r} did not start within {self.config.startup_timeout:g} s "
                "(`startup_timeout` in dadang.toml)"
            )

    def _lost(self) -> McpServerLost:
        """The error of a call the connection died under; marks the server down at once."""
        self.connected = False  # before the caller can look, not when the session is cleaned up
        self._up.clear()
        return McpServerLost(
            f"MCP server {self.name!r} stopped during the call; it is being restarted — "
            "try again in a few seconds"
        )

    def _down(self) -> None:
        """The session ended: fail what is in flight or queued, and mark the server down."""
        if self._calls is not None:
            self._calls.fail_all(self._lost)
        self.connected = False
        self._up.clear()


async def _list_tools(client: Client) -> list[McpToolInfo]:
    tools: list[McpToolInfo] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools
