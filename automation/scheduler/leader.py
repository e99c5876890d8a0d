"""Who runs the scheduler: one leader per database, the others stand by.

PostgreSQL: a session-level advisory lock held on a dedicated connection. When the leader dies
its connection closes and the lock is released at once; a standby polling every few seconds
takes over. A leader that loses its connection (network, `pg_terminate_backend`) notices at its
next health check and stops firing. For the short window where two processes could both fire,
firings are deduplicated in `job_runs`, so the election is about efficiency, not correctness.

SQLite: an exclusive `flock` on a file beside the database, released by the kernel when the
process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

import psycopg
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

LOCK_KEY = 0x44414441_4E47  # "DADANG": one scheduler per database
Callback = Callable[[], Awaitable[None]]


class LeaderElection:
    """Runs `on_lead` when this process becomes leader and `on_lose` when it stops being one."""

    def __init__(self, url: URL, *, poll: float, on_lead: Callback, on_lose: Callback) -> None:
        self._url = url
        self._poll = poll
        self._on_lead = on_lead
        self._on_lose = on_lose
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._file: IO[bytes] | None = None
        self.leading = False

    async def start(self) -> None:
        """Try once now (so a lone process leads at once), then keep trying in the background."""
        await self._attempt()
        self._task = asyncio.create_task(self._loop(), name="scheduler-election")

    async def stop(self) -> None:
        """Give up leadership and release the lock."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leading:
            await self._lose()
        await self._release()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler election failed; retrying")

    async def _attempt(self) -> None:
        if self.leading:
            if not await self._still_held():
                log.warning("lost the scheduler lock; standing by")
                await self._lose()
                await self._release()
            return
        if await self._acquire():
            log.info("this process now runs the scheduler")
            self.leading = True
            await self._on_lead()

    async def _lose(self) -> None:
        self.leading = False
        try:
            await self._on_lose()
        except Exception:
            log.exception("stopping the scheduler after losing the lock failed")

    # --- PostgreSQL advisory lock / SQLite file lock -------------------------------------------

    @property
    def _postgres(self) -> bool:
        return self._url.get_backend_name() == "postgresql"

    async def _acquire(self) -> bool:
        if not self._postgres:
            return await asyncio.to_thread(self._flock)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._conninfo(), autocommit=True, connect_timeout=5
                )
            async with asyncio.timeout(self._poll + 5):
                cursor = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
                row = await cursor.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("scheduler election: database unreachable (%s)", exc)
            await self._release()
            return False
        return bool(row and row[0])

    async def _still_held(self) -> bool:
        if not self._postgres:
            return self._file is not None
        if self._conn is None or self._conn.closed:
            return False
        try:
            async with asyncio.timeout(self._poll + 5):
                await self._conn.execute("SELECT 1")
        except (psycopg.Error, OSError, TimeoutError):
            return False
        return True

    async def _release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._conn.close()  # closing the session releases the advisory lock
            self._conn = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
                self._file.close()
            self._file = None

    def _conninfo(self) -> str:
        url = self._url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _flock(self) -> bool:
        database = self._url.database
        if not database or database == ":memory:":
            return True  # a private in-memory database has exactly one process
        path = Path(f"{database}.scheduler.lock")
        handle = path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        self._file = handle
        return True
