"""A demo office HTTP API (feedback, meeting rooms, bookings) and ways to run it on a port.

`serve()` runs it inside the caller's event loop; `serve_in_thread()` gives it a private loop
in a daemon thread, for synchronous tests and for a subprocess-free README walkthrough.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from datetime import date

import uvicorn

from .app import OfficeState, create_app

__all__ = ["OfficeServer", "OfficeState", "create_app", "serve", "serve_in_thread"]


@dataclass(frozen=True, kw_only=True)
class OfficeServer:
    """A running office API."""

    url: str
    """Base URL without a trailing slash, e.g. http://127.0.0.1:8088."""
    state: OfficeState
    """The live in-memory state, for tests to inspect."""
    token: str | None
    """The bearer token clients must send, or None when auth is off."""


class _QuietServer(uvicorn.Server):
    """uvicorn without signal handlers: the embedding program owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """Bind ourselves so a taken port is an OSError here, not a `sys.exit` inside uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    today: date | None = None,
    state: OfficeState | None = None,
) -> AsyncIterator[OfficeServer]:
    """Serve the API in the running loop until the block exits; port 0 picks a free one.

    Raises:
        OSError: the port is taken.
    """
    office = state or OfficeState.seeded(today)
    config = uvicorn.Config(
        create_app(state=office, token=token),
        lifespan="off",
        log_level="warning",
        log_config=None,
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = _QuietServer(config)
    sock = _bind(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="office-api")
    try:
        while not server.started:
            if task.done():
                await task  # surfaces the startup error
                raise RuntimeError("the office API stopped while starting")
            await asyncio.sleep(0.005)
        bound = sock.getsockname()
        netloc = f"[{bound[0]}]" if sock.family == socket.AF_INET6 else bound[0]
        yield OfficeServer(url=f"http://{netloc}:{bound[1]}", state=office, token=token)
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
        sock.close()


@contextlib.contextmanager
def serve_in_thread(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    today: date | None = None,
    timeout: float = 10.0,
) -> Iterator[OfficeServer]:
    """`serve()` on a private event loop in a daemon thread, for synchronous callers.

    Raises:
        OSError: the port is taken.
        TimeoutError: the server did not start within `timeout` seconds.
    """
    ready = threading.Event()
    started: list[OfficeServer] = []
    failure: list[BaseException] = []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stopping = asyncio.Event()
        stop.append((asyncio.get_running_loop(), stopping))
        async with serve(host=host, port=port, token=token, today=today) as server:
            started.append(server)
            ready.set()
            await stopping.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller's thread below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="office-api", daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout):
            raise TimeoutError(f"the office API did not start within {timeout}s")
        if failure:
            raise failure[0]
        yield started[0]
    finally:
        if stop:
            loop, stopping = stop[0]
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
