"""Run an ASGI app on a loopback port in a background thread, and cross-thread signalling.

Why a thread with its own event loop: the fakes must be reachable while the test's own
asyncio loop (pytest-asyncio) is busy awaiting the code under test, and also from a
subprocess that the test starts. A private loop in a daemon thread serves both, and never
depends on which loop (if any) the test happens to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["Notifier", "ThreadedServer"]


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1 with an OS-assigned port.

    ``start()`` returns only once the socket is listening, so tests never race the
    server. ``stop()`` forces the exit: open long-polls or hung requests must not make
    a test's teardown wait.
    """

    def __init__(self, app: Any, *, name: str = "fake-server", port: int = 0) -> None:
        self._app = app
        self._name = name
        self._wanted_port = port  # 0: the OS picks; a fixed port lets a test "restart" a service
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The server's event loop while it runs (for ``call_soon_threadsafe``)."""

    @property
    def port(self) -> int:
        """The port the OS assigned; only valid after ``start()``."""
        if self._port is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._port

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start serving and block until the socket accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self._wanted_port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            log_config=None,  # never reconfigure the test process's logging
            loop="asyncio",
            ws="none",  # websockets is not needed and may warn on import
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server, self._error = server, None
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            failed = self._error is not None or not thread.is_alive()
            if failed or time.monotonic() > deadline:
                error = self._error
                self.stop()  # leave the object restartable
                if failed:  # e.g. a fixed port still in use: uvicorn exits its loop
                    raise RuntimeError(f"{self._name} failed to start") from error
                raise TimeoutError(f"{self._name} did not start within {timeout}s")
            time.sleep(0.005)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])

    def _run(self) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._serve(self._server))
        except BaseException as exc:
            self._error = exc

    async def _serve(self, server: uvicorn.Server) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await server.serve()
        finally:
            self.loop = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and join its thread (idempotent)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout)
        self._server = None
        self._thread = None
        self._port = None

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Notifier:
    """A condition that any thread or any event loop can wait on.

    The fakes mutate their state from the server's loop (requests) and from the test
    (push methods); waiters live in the server loop (long polling), in the test's loop
    (``await wait_sent``) or in a plain thread (``wait_sent_sync``). ``lock`` guards the
    fake's state; ``notify()`` must be called after each change, outside ``lock`` or in it.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        """Wake every waiter so it re-checks its predicate."""
        with self.lock:
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop closed; its waiter is gone
                loop.call_soon_threadsafe(event.set)

    def wait_sync(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block this thread until ``predicate()`` (called under ``lock``) is true."""
        with self.lock:
            return self._cond.wait_for(predicate, timeout)

    async def wait_async(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Await, in whatever loop is running, until ``predicate()`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = (loop, asyncio.Event())
        with self.lock:
            self._waiters.add(key)
        try:
            while True:
                key[1].clear()  # clear before checking: a notify after this still wakes us
                with self.lock:
                    if predicate():
                        return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(key[1].wait(), remaining)
        finally:
            with self.lock:
                self._waiters.discard(key)
