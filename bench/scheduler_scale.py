"""Scheduler at scale: 100k pending reminders, cold start, then 1,000 reminders due in one second.

Load model (burst): `--users` users and `--reminders` one-off reminders in the database. All but
`--burst` are spread over the next 30 days (never due during the run); `--creates` of those go
through `ReminderService.create` (what a user's request does: validate, insert the row, add the
APScheduler job), the rest are bulk-inserted as the same `reminders` rows plus the exact
`apscheduler_jobs` rows APScheduler writes (built with its own `Job` and pickled by its job
store's protocol; checked field by field against a job the service wrote). The population runs in
a child process, so the resident memory reported is that of the service alone.

The measured process then starts `Proactivity` (scheduler paused → leader election →
reconcile → firing) with the pending jobs in the store: cold start is the wall time until it
leads and its first scheduler round is done. Then `--burst` reminders due at the same whole
second T (≈ 5 s ahead) are inserted the same way and the scheduler is woken. Lateness of a
firing is measured against T at three points: handed to the event loop by the scheduler thread,
recorded (`job_runs.fired_at`, taken when the handler starts), and committed (the firer calls
`deliver` after the transaction that writes `job_runs` + reminder + `outbox`). Exactly-once is
checked from the tables and from the `deliver` calls; the process exits 1 if it fails.

Instrumentation wraps APScheduler's job store and the scheduler's round in this process only
(timestamps, no behaviour change) to show where the time goes.

    python -m bench.scheduler_scale [--reminders 100000 --users 10000 --burst 1000]
        [--creates 1000] [--database-url postgresql://postgres@127.0.0.1:5432/dadang_bench]
    python -m bench.scheduler_scale --quick   # 5k / 500 / burst 200, under a minute

With a PostgreSQL URL whose database does not exist, the database is created and dropped at the
end; an existing one must hold no users.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import math
import multiprocessing
import os
import pickle
import queue
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import make_url

from agent.llm.client import LLMClient
from agent.proactive.service import Proactivity
from agent.settings import load_settings
from automation.scheduler import engine as engine_module
from automation.scheduler.engine import JobEngine, fire, job_id
from automation.scheduler.recurrence import Schedule
from automation.scheduler.reminders import KIND, ReminderService
from bench.machine import describe, process_cpu_seconds
from memory.db import open_database, open_sync_engine
from memory.migrate import upgrade
from memory.models import OutboxItem, User
from memory.proactive_models import JobRun, Reminder
from memory.reminders import ReminderStore

TZ = "Asia/Shanghai"
BATCH = 5000
_TEXTS = ["给王总回电话", "交季度报告", "call Sarah about the launch deck", "吃药",
          "pay the electricity bill", "接孩子放学", "book the dentist", "给妈妈打电话"]  # fmt: skip


# --- helpers -----------------------------------------------------------------------------------


def memory_mb() -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of this process, in MB."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def stats(values: list[float], *, scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """n, p50/p95/p99 (nearest rank), max and mean of `values` × `scale`."""
    if not values:
        return {"n": 0}
    v = sorted(x * scale for x in values)

    def rank(q: float) -> float:
        return round(v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))], digits)

    return {
        "n": len(v),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(v[-1], digits),
        "mean": round(sum(v) / len(v), digits),
    }


def job_row(scheduler: Any, store: SQLAlchemyJobStore, rid: int, due: datetime) -> dict[str, Any]:
    """The `apscheduler_jobs` row `ReminderService` writes for a one-off reminder due at `due`.

    Mirrors `JobEngine.put` → `BaseScheduler.add_job` → `_real_add_job` → `SQLAlchemyJobStore
    .add_job`: same trigger (`Schedule.trigger()`), job options, defaults and pickle protocol.
    """
    ident = job_id(KIND, rid)
    job = Job(
        scheduler,
        trigger=Schedule(timezone=TZ, at=due).trigger(),
        executor="default",
        func=fire,
        args=(KIND, rid),
        kwargs={},
        id=ident,
        name=ident,
        next_run_time=due,
    )
    job._modify(**{k: v for k, v in scheduler._job_defaults.items() if not hasattr(job, k)})
    return {
        "id": job.id,
        "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
        "job_state": pickle.dumps(job.__getstate__(), store.pickle_protocol),
    }


def job_state(blob: bytes) -> dict[str, Any]:
    """A stored job's state, with the trigger as (class, state) so two can be compared."""
    state = pickle.loads(blob)
    trigger = state["trigger"]
    return state | {"trigger": (type(trigger).__name__, trigger.__getstate__())}


def reminder_row(user_id: int, due: datetime, text: str, now: datetime) -> dict[str, Any]:
    """A `reminders` row as `ReminderStore.create` writes it for a one-off Telegram reminder."""
    return {
        "user_id": user_id,
        "kind": "message",
        "text": text,
        "at": due,
        "cron": None,
        "rrule": None,
        "timezone": TZ,
        "status": "active",
        "next_run_at": due,
        "origin": "user",
        "dedupe_key": None,
        "memory_id": None,
        "channel": "telegram",
        "chat_id": str(user_id),
        "fired_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def bulk_insert(
    engine: Engine, scheduler: Any, store: SQLAlchemyJobStore, items: list[tuple[int, datetime]]
) -> tuple[list[int], float, float]:
    """Insert (user, due) reminders and their jobs, one transaction per batch.

    Returns (reminder ids, seconds spent in the database, seconds spent building job rows).
    """
    rng = random.Random(len(items))
    ids: list[int] = []
    db_s = build_s = 0.0
    for i in range(0, len(items), BATCH):
        chunk = items[i : i + BATCH]
        now = datetime.now(UTC)
        rows = [reminder_row(u, d, rng.choice(_TEXTS), now) for u, d in chunk]
        with engine.begin() as conn:
            t0 = time.perf_counter()
            new = list(
                conn.execute(
                    insert(Reminder).returning(Reminder.id, sort_by_parameter_order=True), rows
                ).scalars()
            )
            t1 = time.perf_counter()
            jobs = [
                job_row(scheduler, store, rid, d) for rid, (_, d) in zip(new, chunk, strict=True)
            ]
            t2 = time.perf_counter()
            conn.execute(store.jobs_t.insert(), jobs)
        db_s += (t1 - t0) + (time.perf_counter() - t2)  # includes the commit
        build_s += t2 - t1
        ids.extend(new)
    return ids, db_s, build_s


# --- population (child process) ----------------------------------------------------------------


def populate(url: str, params: dict[str, int], out: Any) -> None:
    """Fill the database; runs in a spawned child so its garbage never counts as service RSS."""
    try:
        out.put(asyncio.run(_populate(url, params)))
    except BaseException as exc:
        out.put({"error": repr(exc)})
        raise


async def _populate(url: str, p: dict[str, int]) -> dict[str, Any]:
    rng = random.Random(11)
    sync = open_sync_engine(url)
    editor = JobEngine(sync)  # paused, like the CLI: edits jobs, never fires
    editor.start()
    scheduler = editor._scheduler
    store = scheduler._lookup_jobstore("default")
    result: dict[str, Any] = {}

    t0 = time.perf_counter()
    now = datetime.now(UTC)
    with sync.begin() as conn:
        for i in range(0, p["users"], BATCH):
            conn.execute(
                insert(User),
                [
                    {"name": f"user-{k}", "is_owner": False, "created_at": now}
                    for k in range(i, min(p["users"], i + BATCH))
                ],
            )
        users = list(conn.execute(select(User.id).order_by(User.id)).scalars())
    result["users_s"] = round(time.perf_counter() - t0, 2)

    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)

    def far() -> datetime:
        return base + timedelta(minutes=rng.randrange(30 * 24 * 60))

    n_bulk = p["reminders"] - p["burst"] - p["creates"]
    items = [(rng.choice(users), far()) for _ in range(n_bulk)]
    t0 = time.perf_counter()
    ids, db_s, build_s = bulk_insert(sync, scheduler, store, items)
    wall = time.perf_counter() - t0
    result["bulk"] = {
        "reminders": n_bulk,
        "seconds": round(wall, 2),
        "per_s": round(n_bulk / wall) if wall else None,
        "database_s": round(db_s, 2),
        "build_jobs_s": round(build_s, 2),
    }

    # The bulk rows must be jobs APScheduler itself can read back.
    checked = 0
    for k in rng.sample(range(len(ids)), min(20, len(ids))):
        job = scheduler.get_job(job_id(KIND, ids[k]))
        due = items[k][1]
        if job is None or (job.next_run_time, job.trigger.run_date, job.args) != (
            due,
            due,
            (KIND, ids[k]),
        ):
            raise RuntimeError(f"bulk job {ids[k]} does not read back as written: {job!r}")
        checked += 1

    # What users hit: ReminderService.create with the store already holding ~all the jobs.
    db = open_database(url)
    service = ReminderService(ReminderStore(db), editor)
    latencies = []
    record = None
    t0 = time.perf_counter()
    for i in range(p["creates"]):
        uid = rng.choice(users)
        t1 = time.perf_counter()
        record, _ = await service.create(
            user_id=uid,
            text=_TEXTS[i % len(_TEXTS)],
            timezone=TZ,
            at=far(),
            channel="telegram",
            chat_id=str(uid),
        )
        latencies.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    result["create"] = {
        "count": p["creates"],
        "per_s": round(p["creates"] / wall, 1) if wall else None,
        "latency_ms": stats(latencies, scale=1000, digits=2),
    }

    # The job the service wrote vs. the one the bulk path writes for the same reminder: equal
    # state (the pickles differ only in memo references: the service's trigger date and next run
    # time are two equal datetimes, the bulk path's one object).
    identical = None
    if record is not None and record.at is not None:
        with sync.connect() as conn:
            stored = conn.execute(
                select(store.jobs_t.c.job_state, store.jobs_t.c.next_run_time).where(
                    store.jobs_t.c.id == job_id(KIND, record.id)
                )
            ).one()
        mine = job_row(scheduler, store, record.id, record.at)
        identical = (
            job_state(stored.job_state) == job_state(mine["job_state"])
            and stored.next_run_time == mine["next_run_time"]
        )
    result["bulk_jobs_checked"] = checked
    result["bulk_job_equals_service_job"] = identical
    await db.dispose()
    editor.shutdown()
    sync.dispose()
    return result


# --- instrumentation (this process only) -------------------------------------------------------


def thread_cpu() -> dict[int, float]:
    """CPU seconds used so far by each live thread of this process (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def cpu_by_thread(before: dict[int, float], after: dict[int, float], total: float) -> dict:
    """CPU seconds between two snapshots, by role: event loop, APScheduler, database threads."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    roles: dict[str, float] = {}
    for tid, used in after.items():
        name = names.get(tid, "")
        role = (
            "event_loop"
            if tid == main
            else "apscheduler"
            if name == "APScheduler"
            else "asyncio_to_thread"
            if name.startswith("asyncio_")
            else "db_driver_threads"  # aiosqlite's per-connection threads
        )
        roles[role] = roles.get(role, 0.0) + used - before.get(tid, 0.0)
    roles["exited_threads"] = total - sum(roles.values())
    return {k: round(v, 2) for k, v in sorted(roles.items())}


class Probe:
    """Timestamps of the scheduler thread's work, collected by wrapping APScheduler's methods."""

    def __init__(self) -> None:
        self.rounds: list[tuple[float, float]] = []
        self.due: list[tuple[float, float, int]] = []  # (start, seconds, jobs)
        self.removes: list[tuple[float, float]] = []  # (start, seconds)
        self.submitted: dict[str, float] = {}
        self.lead_at: float | None = None
        self.handler: dict[str, tuple[float, float]] = {}

    def install(self) -> None:
        def timed(cls: Any, name: str, record: Callable[[float, float, Any], None]) -> None:
            original = getattr(cls, name)

            @functools.wraps(original)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.time()
                result = original(*args, **kwargs)
                record(t0, time.time(), result)
                return result

            setattr(cls, name, wrapper)

        timed(
            engine_module._PollingScheduler,
            "_process_jobs",
            lambda a, b, _: self.rounds.append((a, b)),
        )
        timed(
            SQLAlchemyJobStore, "get_due_jobs", lambda a, b, r: self.due.append((a, b - a, len(r)))
        )
        timed(SQLAlchemyJobStore, "remove_job", lambda a, b, _: self.removes.append((a, b - a)))
        timed(JobEngine, "lead", lambda a, b, _: setattr(self, "lead_at", a))
        original_submit = engine_module._LoopExecutor._do_submit_job

        def submit(executor: Any, job: Any, run_times: list[datetime]) -> None:
            self.submitted[job.id] = time.time()
            original_submit(executor, job, run_times)

        engine_module._LoopExecutor._do_submit_job = submit

    def wrap_handler(self, handler: Any) -> Any:
        """Times each batch of firings the firer handles (every firing gets its batch's span)."""

        async def run(firings: list[Any]) -> None:
            t0 = time.time()
            try:
                await handler(firings)
            finally:
                t1 = time.time()
                for firing in firings:
                    self.handler[firing.job_id] = (t0, t1)

        return run


class ErrorCount(logging.Handler):
    """Counts ERROR records (failed firings, failed scheduler rounds)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()[:300]


# --- the measured service ----------------------------------------------------------------------


async def measure(url: str, home: Path, p: dict[str, int], probe: Probe) -> dict[str, Any]:
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    delivered: dict[int, float] = {}
    deliver_calls = 0

    def deliver(entry: Any) -> None:
        nonlocal deliver_calls
        deliver_calls += 1
        delivered.setdefault(entry.id, time.time())

    async def run_task(*_: Any) -> None:
        return None

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    await asyncio.to_thread(upgrade, url)  # what `dadang run` does first; a no-op check here
    out["migrate_check_s"] = round(time.perf_counter() - t0, 3)
    rss_before = memory_mb()

    settings = load_settings(
        home=home, database_url=url, scheduler_poll=1.0, quiet_hours="", heartbeat_minutes=0
    )
    db = open_database(url)
    # Heartbeats are off (heartbeat_minutes=0), so nothing calls the model; a closed port.
    llm = LLMClient(base_url="http://127.0.0.1:9/v1", max_retries=0)
    t0 = time.perf_counter()
    w0 = time.time()
    service = Proactivity(
        settings,
        db,
        push_channels=frozenset({"telegram"}),
        deliver=deliver,
        run_task=run_task,
        llm=llm,
    )
    service.firer.fire_many = probe.wrap_handler(service.firer.fire_many)  # type: ignore[method-assign]
    store = service.reminders.store
    reconcile: list[float] = []
    without_job = store.without_job

    async def timed_without_job(**kw: Any) -> Any:
        r0 = time.perf_counter()
        try:
            return await without_job(**kw)
        finally:
            reconcile.append(time.perf_counter() - r0)

    store.without_job = timed_without_job  # type: ignore[method-assign]
    await service.start()
    start_s = time.perf_counter() - t0
    if not service.leading:
        raise SystemExit("this process did not win the scheduler election; is another running?")
    lead_at = probe.lead_at or w0
    while not any(a >= lead_at for a, _ in probe.rounds):
        await asyncio.sleep(0.005)
    first_round = next((a, b) for a, b in probe.rounds if a >= lead_at)
    out["cold_start"] = {
        "pending_jobs": p["reminders"] - p["burst"],
        "start_s": round(start_s, 3),
        "to_first_round_done_s": round(first_round[1] - w0, 3),
        "reconcile_query_s": round(reconcile[0], 3) if reconcile else None,
        "first_round_s": round(first_round[1] - first_round[0], 4),
        "rss_mb_before": rss_before["VmRSS"],
        "rss_mb_after": memory_mb()["VmRSS"],
    }

    # The burst: `burst` reminders due at the same whole second T.
    sync = open_sync_engine(url)
    scheduler = service.engine._scheduler
    jobstore = scheduler._lookup_jobstore("default")
    rng = random.Random(5)
    with sync.connect() as conn:
        users = list(conn.execute(select(User.id)).scalars())
    due_ts = math.ceil(time.time()) + 5
    due = datetime.fromtimestamp(due_ts, UTC)
    t0 = time.perf_counter()
    burst_ids, _, _ = await asyncio.to_thread(
        bulk_insert,
        sync,
        scheduler,
        jobstore,
        [(rng.choice(users), due) for _ in range(p["burst"])],
    )
    insert_s = time.perf_counter() - t0
    service.engine.wakeup()
    inserted_before_due = time.time() < due_ts
    await asyncio.sleep(max(0.0, due_ts - time.time() - 0.2))
    cpu0, wall0, threads0 = process_cpu_seconds(os.getpid()), time.time(), thread_cpu()
    rounds_before = len(probe.rounds)
    due_before = len(probe.due)
    removes_before = len(probe.removes)

    async def fired_count() -> int:
        async with db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(JobRun))).scalar_one())

    deadline = due_ts + 120
    complete = False
    last_check = 0.0
    while time.time() < deadline:
        if len(delivered) >= p["burst"]:
            complete = True
            break
        if time.time() - last_check > 1.0:
            last_check = time.time()
            if await fired_count() >= p["burst"]:
                complete = True
                break
        await asyncio.sleep(0.05)
    done_at = time.time()
    cpu = process_cpu_seconds(os.getpid()) - cpu0
    by_thread = cpu_by_thread(threads0, thread_cpu(), cpu)
    await asyncio.sleep(2 * settings.scheduler_poll + 0.5)  # a duplicate would show up by now
    peak = memory_mb()

    # What the tables say.
    burst_jobs = {job_id(KIND, r) for r in burst_ids}
    async with db.engine.connect() as conn:
        runs = (
            await conn.execute(
                select(
                    JobRun.job_id,
                    JobRun.run_time,
                    JobRun.fired_at,
                    JobRun.outcome,
                    JobRun.outbox_id,
                )
            )
        ).all()
        outbox = (await conn.execute(select(OutboxItem.id, OutboxItem.created_at))).all()
        fired_reminders = (
            await conn.execute(
                select(func.count()).where(
                    Reminder.id.in_(burst_ids),
                    Reminder.status == "fired",
                    Reminder.fired_count == 1,
                )
            )
        ).scalar_one()
        jobs_left = (
            await conn.execute(select(func.count()).select_from(jobstore.jobs_t))
        ).scalar_one()
    outbox_ids = {r.outbox_id for r in runs if r.outbox_id is not None}
    checks = {
        "job_runs": len(runs),
        "job_runs_distinct_jobs": len({r.job_id for r in runs}),
        "job_runs_outside_burst": sum(r.job_id not in burst_jobs for r in runs),
        "job_runs_at_due_time": sum(r.run_time == due for r in runs),
        "outcomes": {o: sum(r.outcome == o for r in runs) for o in {r.outcome for r in runs}},
        "outbox_rows": len(outbox),
        "outbox_rows_linked_once": len(outbox_ids),
        "deliver_calls": deliver_calls,
        "delivered_distinct": len(delivered),
        "reminders_fired_once": fired_reminders,
        "jobs_left": jobs_left,
        "jobs_expected_left": p["reminders"] - p["burst"],
    }
    n = p["burst"]
    exactly_once = (
        complete
        and checks["job_runs"] == n
        and checks["job_runs_distinct_jobs"] == n
        and checks["job_runs_outside_burst"] == 0
        and checks["job_runs_at_due_time"] == n
        and checks["outbox_rows"] == n
        and checks["outbox_rows_linked_once"] == n
        and checks["deliver_calls"] == n
        and checks["delivered_distinct"] == n
        and checks["reminders_fired_once"] == n
        and checks["jobs_left"] == checks["jobs_expected_left"]
    )
    checks["exactly_once"] = exactly_once

    submit = [probe.submitted[j] - due_ts for j in burst_jobs if j in probe.submitted]
    handler = [probe.handler[j] for j in burst_jobs if j in probe.handler]
    queued = [
        probe.handler[j][0] - probe.submitted[j]
        for j in burst_jobs
        if j in probe.handler and j in probe.submitted
    ]
    recorded = [(r.fired_at - r.run_time).total_seconds() for r in runs if r.job_id in burst_jobs]
    committed = [t - due_ts for t in delivered.values()]
    removes = probe.removes[removes_before:]
    due_calls = [d for d in probe.due[due_before:] if d[2] > 0]
    burst_rounds = [
        (a, b) for a, b in probe.rounds[rounds_before:] if any(a <= d[0] <= b for d in due_calls)
    ]
    last = max(delivered.values()) if delivered else done_at
    first_submit = (
        min(probe.submitted[j] for j in burst_jobs if j in probe.submitted) if submit else due_ts
    )
    out["burst"] = {
        "reminders": n,
        "due_at": due.isoformat(),
        "insert_s": round(insert_s, 3),
        "inserted_before_due": inserted_before_due,
        "complete": complete,
        "lateness_committed_s": stats(committed),
        "lateness_recorded_s": stats(recorded),
        "lateness_handed_to_loop_s": stats(submit),
        "loop_queue_wait_s": stats(queued),
        "handler_s": stats([b - a for a, b in handler]),
        "drain_s": round(last - due_ts, 3),
        "process_cpu_s": round(cpu, 2),
        "process_cpu_share": round(cpu / (done_at - wall0), 2),
        "cpu_ms_per_firing": round(cpu / n * 1000, 1),
        "cpu_s_by_thread": by_thread,
        "firings_per_s": round(n / (last - first_submit), 1) if last > first_submit else None,
        "scheduler_rounds_with_due_jobs": len(burst_rounds),
        "scheduler_round_s": [round(b - a, 3) for a, b in burst_rounds],
        "get_due_jobs": [{"jobs": d[2], "s": round(d[1], 3)} for d in due_calls],
        "remove_job_calls": len(removes),
        "remove_job_s": stats([s for _, s in removes], scale=1000, digits=2) | {"unit": "ms"},
        "remove_job_total_s": round(sum(s for _, s in removes), 3),
        "errors_logged": errors.count,
        "first_error": errors.first,
    }
    out["exactly_once"] = checks
    out["rss_mb"] = {"after_burst": peak["VmRSS"], "peak": peak["VmHWM"]}

    # Control, same run: what one job removal costs when no firing competes for the database.
    fake = [(10_000_000 + i, due + timedelta(days=60)) for i in range(min(200, n))]
    with sync.begin() as conn:
        conn.execute(
            jobstore.jobs_t.insert(), [job_row(scheduler, jobstore, r, d) for r, d in fake]
        )
    mark = len(probe.removes)
    for r, _ in fake:
        await asyncio.to_thread(service.engine.remove, KIND, r)
    out["burst"]["remove_job_idle_s"] = stats(
        [s for _, s in probe.removes[mark:]], scale=1000, digits=2
    ) | {"unit": "ms"}

    out["heartbeat"] = await heartbeat_day(service, llm, users=min(200, p["users"]))

    await service.stop()
    await llm.aclose()
    await db.dispose()
    sync.dispose()
    return out


async def heartbeat_day(service: Any, llm: Any, *, users: int) -> dict[str, Any]:
    """A day of heartbeats (48, the default 30 minutes) for `users` users with nothing due.

    Every model call would be counted here (the client points at a closed port, so a call would
    also fail loudly); the target is none.
    """
    calls = 0
    real_chat = llm.chat

    async def counting_chat(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await real_chat(*args, **kwargs)

    llm.chat = counting_chat
    decisions: dict[str, int] = {}
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for _ in range(48):
        for user_id in range(1, users + 1):
            decision = await service.heartbeat.beat(user_id)
            decisions[decision] = decisions.get(decision, 0) + 1
    wall = time.perf_counter() - t0
    beats = 48 * users
    return {
        "users": users,
        "beats": beats,
        "decisions": decisions,
        "model_calls": calls,
        "model_calls_per_user_day": round(calls / users, 3),
        "tokens_per_user_day": 0 if calls == 0 else None,
        "ms_per_beat": round(wall / beats * 1000, 3),
        "cpu_ms_per_beat": round((time.process_time() - cpu0) / beats * 1000, 3),
        "cpu_s_per_user_day": round((time.process_time() - cpu0) / users, 4),
    }


# --- PostgreSQL scratch database -------------------------------------------------------------------


def prepare_postgres(url: str) -> bool:
    """Create the database named in `url` if missing; True when this run created it."""
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
        ).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{target.database}"')
    return True


def drop_postgres(url: str) -> None:
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


# --- entry point -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    params = {
        "reminders": args.reminders,
        "users": args.users,
        "burst": args.burst,
        "creates": min(args.creates, args.reminders - args.burst),
    }
    home = Path(tempfile.mkdtemp(prefix="dadang-sched-"))
    url = args.database_url or f"sqlite:///{home / 'scheduler.db'}"
    postgres = make_url(url).get_backend_name() == "postgresql"
    created = prepare_postgres(url) if postgres else False
    result: dict[str, Any] = {
        "benchmark": "scheduler_scale",
        "database": "postgresql" if postgres else "sqlite",
        "params": params,
        "machine": describe(),
    }
    try:
        t0 = time.perf_counter()
        upgrade(url)
        result["migrate_s"] = round(time.perf_counter() - t0, 2)
        check = open_sync_engine(url)
        with check.connect() as conn:
            if conn.execute(select(func.count()).select_from(User)).scalar_one():
                raise SystemExit(f"{url} already holds users; give an empty or new database")
        check.dispose()

        print(f"populating: {json.dumps(params)}", file=sys.stderr, flush=True)
        context = multiprocessing.get_context("spawn")
        channel = context.Queue()
        child = context.Process(target=populate, args=(url, params, channel))
        t0 = time.perf_counter()
        child.start()
        try:
            populated = channel.get(timeout=3600)
        except queue.Empty:
            populated = {"error": "population timed out"}
        child.join()
        if "error" in populated:
            raise SystemExit(f"population failed: {populated['error']}")
        populated["total_s"] = round(time.perf_counter() - t0, 1)
        result["population"] = populated
        print(f"populated in {populated['total_s']} s; starting the service", file=sys.stderr)

        probe = Probe()
        probe.install()
        result |= asyncio.run(measure(url, home, params, probe))
    finally:
        if created:
            drop_postgres(url)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result["exactly_once"]["exactly_once"] else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--reminders", type=int, help="pending reminders in total (100000)")
    parser.add_argument("--users", type=int, help="users owning them (10000)")
    parser.add_argument("--burst", type=int, help="reminders due in the same second (1000)")
    parser.add_argument("--creates", type=int, help="made via ReminderService.create (1000)")
    parser.add_argument("--database-url", help="postgresql://…/db (default: SQLite in a temp dir)")
    parser.add_argument("--quick", action="store_true", help="5k reminders, 500 users, burst 200")
    args = parser.parse_args()
    sizes = (5000, 500, 200, 200) if args.quick else (100_000, 10_000, 1000, 1000)
    for name, default in zip(("reminders", "users", "burst", "creates"), sizes, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
