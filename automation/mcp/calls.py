"""`CallQueue`: tool calls handed from any task to the one task that owns a server's session.

A caller puts a call (with a future) on a memory stream and waits on the future with its
timeout; the session task runs each call as a child task. Cancelling the wait (timeout, or the
turn being cancelled) cancels the child, which makes the SDK tell the server to stop too. Every
call is registered until its caller is done with it, so when the session dies, `fail_all` can
fail even a call that was still queued, or lost in the stream while the session went down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult

from automation.mcp.errors import McpCallError, McpCallTimeout

MAX_QUEUED: Final = 64
"""Calls waiting for one server; more means something is stuck, and the model hears so."""


@dataclass(eq=False)
class _Call:
    name: str
    arguments: dict[str, Any]
    future: asyncio.Future[CallToolResult] = field(repr=False)


class CallQueue:
    """The calls of one server; `submit` from any task, `serve` from the session task."""

    def __init__(self, server: str, *, scrub: Callable[[str], str]) -> None:
        self._where = f"MCP server {server!r}"
        self._scrub = scrub
        self._send, self._receive = anyio.create_memory_object_stream[_Call](MAX_QUEUED)
        self._registered: set[_Call] = set()

    async def submit(
        self, name: str, arguments: dict[str, Any], *, time_limit: float
    ) -> CallToolResult:
        """The server's answer to `name(arguments)` within `time_limit` seconds.

        Raises:
            McpCallTimeout: no answer in time (the call is cancelled on the server).
            McpCallError: the queue is full or closed, or the server refused the call.
        """
        call = _Call(name, arguments, asyncio.get_running_loop().create_future())
        try:
            self._send.send_nowait(call)
        except anyio.WouldBlock:
            raise McpCallError(f"{self._where} has too many calls waiting; try later") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise McpCallError(f"{self._where} is shutting down") from None
        self._registered.add(call)
        try:
            async with asyncio.timeout(time_limit):
                return await call.future  # cancelling this wait cancels the call's task
        except TimeoutError:
            raise McpCallTimeout(
                f"{self._where}: {name} did not answer within {time_limit:g} s "
                "(the server's `timeout` in dadang.toml)"
            ) from None
        finally:
            self._registered.discard(call)

    async def serve(self, client: Client, *, lost: Callable[[], Exception]) -> None:
        """Run calls until `close` (returns) or until the connection is found dead (returns
        too, after failing that call with `lost()`)."""
        async with anyio.create_task_group() as tg:
            async for call in self._receive:
                tg.start_soon(self._run, client, call, lost, tg.cancel_scope)
            tg.cancel_scope.cancel()  # closed: abandon the calls in flight

    def fail_all(self, error: Callable[[], Exception]) -> None:
        """Fail every call a caller still waits for, and drop what is queued."""
        for call in list(self._registered):
            _fail(call, error())
        while True:
            try:
                _fail(self._receive.receive_nowait(), error())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return

    def close(self) -> None:
        """No more calls: `serve` returns, `submit` fails."""
        self._send.close()

    def dispose(self) -> None:
        """Release both ends of the stream (after the session task is gone)."""
        self._send.close()
        self._receive.close()

    async def _run(
        self,
        client: Client,
        call: _Call,
        lost: Callable[[], Exception],
        session: anyio.CancelScope,
    ) -> None:
        if call.future.done():
            return  # the caller gave up, or the session it was queued for died
        with anyio.CancelScope() as scope:

            def abandon(future: asyncio.Future[CallToolResult]) -> None:
                if future.cancelled():  # the caller timed out or its turn was cancelled
                    scope.cancel()

            call.future.add_done_callback(abandon)
            try:
                result = await client.call_tool(call.name, call.arguments)
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED:
                    _fail(call, lost())
                    session.cancel()  # the session is dead: leave it, the supervisor restarts
                else:
                    _fail(call, McpCallError(self._scrub(f"{call.name}: {exc.message}")))
            except Exception as exc:  # a malformed answer must not take the session down
                _fail(call, McpCallError(self._scrub(f"{call.name}: {exc}")))
            else:
                if not call.future.done():
                    call.future.set_result(result)
            finally:
                call.future.remove_done_callback(abandon)


def _fail(call: _Call, error: Exception) -> None:
    if not call.future.done():
        call.future.set_exception(error)
