"""APScheduler on the project's database, firing into the asyncio loop.

APScheduler runs on its own thread (`BackgroundScheduler`), so its synchronous job store never
blocks the event loop. A due job is handed to the loop as a `Firing` carrying its *scheduled*
time; the handler decides lateness and does its own exactly-once bookkeeping, because
APScheduler removes or advances a job right after submitting it and a crash there would
otherwise lose or repeat a firing.

Every process starts the scheduler paused: it can add and remove jobs (the CLI, a replica that
is not the leader) but fires nothing until `lead()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine, delete

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"


@dataclass(frozen=True, kw_only=True)
class Firing:
    """A job that came due: what to do (`kind`, `ref`) and when it was meant to happen."""

    job_id: str
    kind: str
    ref: int
    run_time: datetime
    """The scheduled time (UTC), not the time the handler runs."""


FireHandler = Callable[[list[Firing]], Awaitable[None]]
"""Receives due jobs in batches (up to `BATCH`), so a burst costs a few transactions."""
BATCH = 200


def job_id(kind: str, ref: int) -> str:
    """The job id of `kind` number `ref` (`reminder:12`, `heartbeat:3`)."""
    return f"{kind}:{ref}"


def fire(kind: str, ref: int) -> None:
    """The callable stored with every job; only a textual reference to it is persisted.

    Jobs are run by `_LoopExecutor`, which routes on the job's arguments instead of calling this.
    """
    raise RuntimeError(f"job {kind}:{ref} must be run by Dadang's scheduler, not called directly")


class _BatchingJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy store, with the deletes of one processing round batched.

    APScheduler deletes each fired one-off job in its own transaction before it submits the
    next one, so the 1,000th reminder of a burst waited for 999 commits (about 10 s measured by
    bench/scheduler_scale.py). Deferring the deletes of a round to one statement removes that
    wait; the round's final `get_next_run_time` may still see them, which only costs one extra
    (empty) round.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.batching = False
        self._deferred: list[str] = []

    def remove_job(self, job_id: str) -> None:
        if self.batching:
            self._deferred.append(job_id)
            return
        super().remove_job(job_id)

    def flush(self) -> None:
        ids, self._deferred = self._deferred, []
        for start in range(0, len(ids), 500):
            with self.engine.begin() as connection:
                connection.execute(
                    delete(self.jobs_t).where(self.jobs_t.c.id.in_(ids[start : start + 500]))
                )


class _PollingScheduler(BackgroundScheduler):  # type: ignore[misc]
    """Wakes at least every `poll` seconds, to see jobs that other processes wrote to the store."""

    def __init__(self, *, poll: float, store: _BatchingJobStore, **options: Any) -> None:
        super().__init__(jobstores={"default": store}, **options)
        self._poll = poll
        self._store = store

    def _process_jobs(self) -> float:
        if self.state != STATE_RUNNING:
            # APScheduler's loop runs one last round after shutdown(), and its own check only
            # skips *paused* schedulers: a shut-down editor (the CLI) would fire due jobs, or
            # rather, drop them, since it cannot run them.
            return self._poll
        try:
            with self._jobstores_lock:
                self._store.batching = True
                try:
                    wait: float | None = super()._process_jobs()
                finally:
                    self._store.batching = False
                    self._store.flush()
        except Exception:
            # An uncaught error would end the scheduler thread for good; the next round
            # re-reads the store (firings are deduplicated, so nothing runs twice).
            log.exception("processing due jobs failed; retrying")
            return self._poll
        return self._poll if wait is None else min(wait, self._poll)


class _LoopExecutor(BaseExecutor):  # type: ignore[misc]
    """Hands due jobs to the loop in batches: a burst of firings becomes a few transactions."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None, handler: FireHandler | None) -> None:
        super().__init__()
        self._loop = loop
        self._handler = handler
        self._pending: list[Firing] = []
        self._task: asyncio.Task[None] | None = None

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        if self._loop is None or self._handler is None:
            raise RuntimeError("this scheduler only edits jobs; it cannot run them")
        kind, ref = job.args
        firing = Firing(job_id=job.id, kind=kind, ref=ref, run_time=run_times[-1].astimezone(UTC))
        self._loop.call_soon_threadsafe(self._collect, firing)

    def _collect(self, firing: Firing) -> None:
        assert self._loop is not None
        self._pending.append(firing)
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._run(), name="job-batches")

    async def _run(self) -> None:
        assert self._handler is not None
        while self._pending:
            await asyncio.sleep(0)  # let the rest of a burst arrive first
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                await self._handler(batch)
            except Exception:
                log.exception("%d jobs failed; their owners will reconcile them", len(batch))
            finally:
                for firing in batch:
                    self._run_job_success(firing.job_id, [])

    async def drain(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class JobEngine:
    """The scheduler of one process: edits jobs always, fires them only while leading."""

    def __init__(self, engine: Engine, *, poll: float = 1.0) -> None:
        self._engine = engine
        self._poll = poll
        self._scheduler: _PollingScheduler | None = None
        self._executor: _LoopExecutor | None = None
        self.leading = False

    def start(
        self, loop: asyncio.AbstractEventLoop | None = None, handler: FireHandler | None = None
    ) -> None:
        """Open the job store, paused (blocking; call from a thread in async code)."""
        self._executor = _LoopExecutor(loop, handler)
        self._scheduler = _PollingScheduler(
            poll=self._poll,
            store=_BatchingJobStore(engine=self._engine, tablename=JOB_TABLE),
            executors={"default": self._executor},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
            daemon=True,
        )
        self._scheduler.start(paused=True)

    def lead(self) -> None:
        """Start firing due jobs (this process won the election)."""
        assert self._scheduler is not None
        self.leading = True
        self._scheduler.resume()

    def stand_by(self) -> None:
        """Stop firing (leadership lost); editing jobs still works."""
        if self._scheduler is not None and self.leading:
            self._scheduler.pause()
        self.leading = False

    def shutdown(self) -> None:
        """Stop the scheduler thread (blocking)."""
        if self._scheduler is not None:
            self.stand_by()
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    async def drain(self) -> None:
        """Wait for firings already handed to the loop."""
        if self._executor is not None:
            await self._executor.drain()

    def put(
        self,
        kind: str,
        ref: int,
        trigger: BaseTrigger,
        *,
        next_run_time: datetime | None = None,
    ) -> str:
        """Add or replace the job for (`kind`, `ref`) (blocking); returns its id."""
        assert self._scheduler is not None, "start() the engine first"
        ident = job_id(kind, ref)
        options: dict[str, Any] = {}
        if next_run_time is not None:
            options["next_run_time"] = next_run_time
        self._scheduler.add_job(
            fire,
            trigger=trigger,
            args=(kind, ref),
            id=ident,
            name=ident,
            replace_existing=True,
            **options,
        )
        return ident

    def remove(self, kind: str, ref: int) -> bool:
        """Remove the job if it exists (blocking); False when there was none."""
        assert self._scheduler is not None, "start() the engine first"
        try:
            self._scheduler.remove_job(job_id(kind, ref))
        except JobLookupError:
            return False
        return True

    def wakeup(self) -> None:
        """Look at the job store now rather than at the next poll."""
        if self._scheduler is not None and self.leading:
            self._scheduler.wakeup()
