"""Audit overhead: what the policy check and the audit append add to a tool call, and how fast
`dadang audit verify` checks a long chain.

Load model (sequential, no think time): one coroutine makes `--calls` tool calls of each of two
kinds, alternating, after `--warmup` of each. A call is timed from the gate's view to the end of
act's bookkeeping: the target taken from the raw arguments (`target_of`), `PolicyEngine.decide`
with the default policy and a real `GrantStore`, then `AuditLog.append` of the `tool_call` row
that `act` writes (each in its own transaction, as in a turn). The tool itself does not run.

- allow: `reminder_create` (risk write, allowed by `risk.write`; no database read);
- grant: `memory_forget` (risk irreversible → ask) allowed by the user's standing grant, so the
  grant lookup is one query.

The calls append to a log already holding `--rows` rows (a busy instance after months), on a
migrated file database in a temporary directory (SQLite, WAL, as the service opens it) and on a
fresh PostgreSQL database (created and dropped here). Then `AuditLog.verify()` runs over the
whole chain `--verify-repeats` times (the file is in the page cache: the fill just wrote it).

The fill is not measured: rows (a turn's data_read, model_call, tool_call, model_call, over
100 users; details from 4,096 rendered templates) are chained with `memory.audit.row_hash` and
bulk-inserted (`executemany` on SQLite with the column type's own bind processor; COPY on
PostgreSQL), and `audit_head` is set, so the calls chain on and verify must find zero problems
(exit 1 if not, or if filled and appended rows store `at` differently). Figures are reported,
not enforced: a missed target does not change the exit status. Also reported: this process's CPU
per call, which unlike the latencies barely moves when other work shares the cores.

    python -m bench.audit_overhead [--calls 5000] [--rows 1000000] [--no-postgres]
    python bench/audit_overhead.py --calls 2000 --rows 100000   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
import sqlalchemy
from sqlalchemy import insert, select
from sqlalchemy.dialects import sqlite as sqlite_dialect

from agent.graph.gate import loose_arguments, target_of
from agent.policy.engine import PolicyEngine
from agent.policy.rules import DEFAULT_POLICY, Decision, Policy
from automation.tools.base import Tool
from automation.tools.memory_tools import MemoryForget
from automation.tools.reminders import CreateReminder
from memory.approval_models import PolicyGrant
from memory.audit import GENESIS, AuditLog, canonical, row_hash
from memory.audit_models import AuditHead
from memory.db import Database, open_database
from memory.grants import GrantStore
from memory.migrate import upgrade
from memory.models import User
from memory.types import UTCDateTime

PG_ADMIN = os.environ.get("DADANG_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
USERS = 100
USER_ID = 1
FILL_BATCH = 50_000
TEMPLATES = 4096
CALL_P99_TARGET_MS = 2.0
VERIFY_TARGET_S = 10.0
"""For 1,000,000 rows; other sizes are scaled linearly."""
STORED_AT = "SELECT at FROM audit_log WHERE seq IN (1, :last)"
_COLUMNS = ("seq", "at", "user_id", "actor", "action", "target", "detail", "prev_hash", "hash")
_TEXTS = ["给王总回电话，确认周三的季度报告", "call Sarah about the launch deck", "吃药"]


# --- the chain the fill writes -----------------------------------------------------------------
def _content(rng: random.Random, seq: int) -> tuple[int | None, str, str, str, dict[str, Any]]:
    """(user, actor, action, target, detail) of row `seq`: a turn's data_read, model_call,
    tool_call, model_call in turn, and now and then an owner's CLI action without a user."""
    if seq % 1000 == 0:
        return None, "cli", "secret_set", "api.token", {"name": "api.token"}
    user, message, step = 1 + rng.randrange(USERS), seq // 4, seq % 4
    if step == 0:
        ids = rng.sample(range(1, 5000), 6)
        detail = {"message_id": message, "memory_ids": ids, "calendar": False}
        return user, "agent", "data_read", "memory", detail
    if step == 2:
        arguments = _reminder_arguments(rng)
        detail = _tool_detail(message, arguments, risk="write", decision="allow", rule="risk.write")
        return user, "agent", "tool_call", "reminder_create", detail
    detail = {
        "message_id": message,
        "prompt_tokens": rng.randrange(1500, 4000),
        "completion_tokens": rng.randrange(10, 400),
        "latency_ms": rng.randrange(150, 2500),
        "requests": 1,
        "tool_calls": ["reminder_create"] if step == 1 else [],
        "finish_reason": "tool_calls" if step == 1 else "stop",
    }
    return user, "agent", "model_call", "qwen3-32b", detail


def _reminder_arguments(rng: random.Random) -> str:
    """Raw arguments of a `reminder_create` call, as the model sends them."""
    text = rng.choice(_TEXTS)
    return json.dumps({"text": text, "at": "2026-11-27T15:00:00+08:00"}, ensure_ascii=False)


def _tool_detail(
    message: int, arguments: str, *, risk: str, decision: str, rule: str
) -> dict[str, Any]:
    """The detail `agent.graph.nodes.act` records for a call that ran."""
    return {
        "message_id": message,
        "risk": risk,
        "reads": [],
        "arguments": arguments[:2000],
        "decision": decision,
        "rule": rule,
        "ran": True,
        "ok": True,
        "untrusted_output": False,
    }


def _templates() -> list[tuple[int | None, str, str, str, str]]:
    """`TEMPLATES` rows' content with the detail rendered (rendering per row would make the
    fill, not the measurement, the slow part); row `seq` takes template `seq % TEMPLATES`."""
    rng = random.Random(7)
    out = []
    for seq in range(TEMPLATES):
        user, actor, action, target, detail = _content(rng, seq)
        out.append((user, actor, action, target, canonical(detail)))
    return out


def chain(rows: int, *, start: datetime) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of correctly chained rows (columns `_COLUMNS`), about 2.5 s apart."""
    templates = _templates()
    prev, batch = GENESIS, []
    for seq in range(1, rows + 1):
        at = start + timedelta(seconds=seq * 2.5, microseconds=seq * 7919 % 1_000_000)
        if seq % 997 == 0:
            at = at.replace(microsecond=0)  # isoformat() drops ".000000": keep that case covered
        user, actor, action, target, body = templates[seq % TEMPLATES]
        digest = row_hash(
            prev,
            seq=seq,
            at=at,
            user_id=user,
            actor=actor,
            action=action,
            target=target,
            detail=body,
        )
        batch.append((seq, at, user, actor, action, target, body, prev, digest))
        prev = digest
        if len(batch) == FILL_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill_sqlite(path: Path, rows: int, start: datetime) -> None:
    """Bulk-insert the chain; `at` goes through the column type's bind processor (the stored
    text is exactly what `AuditLog.append` stores) and the head follows the last row."""
    dialect = sqlite_dialect.dialect()
    bind_at = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert bind_at is not None
    sql = f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    seq, last = 0, GENESIS
    with sqlite3.connect(path) as conn:
        for batch in chain(rows, start=start):
            conn.executemany(sql, [(r[0], bind_at(r[1]), *r[2:]) for r in batch])
            seq, last = batch[-1][0], batch[-1][-1]
        conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, last))
    conn.close()


def fill_postgres(url: str, rows: int, start: datetime) -> None:
    """The same chain through COPY (aware UTC datetimes, as the column type binds them)."""
    seq, last = 0, GENESIS
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY audit_log ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for batch in chain(rows, start=start):
                    for row in batch:
                        copy.write_row(row)
                    seq, last = batch[-1][0], batch[-1][-1]
            cur.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (seq, last))
        conn.commit()


# --- per-call overhead -------------------------------------------------------------------------
def percentiles(values_ns: list[int]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ordered = sorted(values_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


async def seed_users(db: Database) -> None:
    """`USERS` users with a few standing grants each; user 1 always allows `memory_forget`."""
    now = datetime.now(UTC)
    users = [{"id": i, "name": f"user {i}", "created_at": now} for i in range(1, USERS + 1)]
    grants = [
        {"user_id": i, "tool": tool, "target": target, "created_at": now}
        for i in range(1, USERS + 1)
        for tool, target in [
            ("memory_forget", ""),
            ("web_read", "example.com"),
            ("http_post", f"api{i}.example.com"),
        ]
    ]
    async with db.engine.begin() as conn:
        await conn.execute(insert(User), users)
        await conn.execute(insert(PolicyGrant), grants)


async def measure_calls(db: Database, *, calls: int, warmup: int) -> dict[str, Any]:
    """Alternate allow and grant calls; total, decide and append times per call."""
    audit = AuditLog(db)
    policy = PolicyEngine(Policy.parse(DEFAULT_POLICY), grants=GrantStore(db, audit))
    kinds: list[tuple[str, Tool[Any], Decision, str]] = [
        ("allow", CreateReminder(), Decision.ALLOW, "risk.write"),
        ("grant", MemoryForget(), Decision.ALLOW, "grant#1"),
    ]
    samples: dict[str, dict[str, list[int]]] = {
        kind: {"total": [], "decide": [], "append": []} for kind, *_ in kinds
    }
    rng = random.Random(11)
    clock = time.perf_counter_ns
    cpu_start = 0.0
    for i in range(warmup + calls):
        if i == warmup:
            cpu_start = time.process_time()
        for kind, tool, expected, rule in kinds:
            if kind == "allow":
                arguments = _reminder_arguments(rng)
            else:
                arguments = json.dumps({"memory_id": rng.randrange(1, 5000)})
            t0 = clock()
            target = target_of(tool, loose_arguments(arguments))
            verdict = await policy.decide(user_id=USER_ID, name=tool.name, tool=tool, target=target)
            t1 = clock()
            await audit.append(
                actor="agent",
                action="tool_call",
                user_id=USER_ID,
                target=tool.name,
                detail=_tool_detail(
                    i,
                    arguments,
                    risk=tool.risk.value if tool.risk else "unknown",
                    decision=verdict.decision.value,
                    rule=verdict.rule,
                ),
            )
            t2 = clock()
            if verdict.decision is not expected or verdict.rule != rule:
                raise SystemExit(f"{kind}: unexpected verdict {verdict} (wanted {rule})")
            if i >= warmup:
                samples[kind]["total"].append(t2 - t0)
                samples[kind]["decide"].append(t1 - t0)
                samples[kind]["append"].append(t2 - t1)
    result: dict[str, Any] = {
        kind: {part: percentiles(values) for part, values in parts.items()}
        for kind, parts in samples.items()
    }
    cpu_s = time.process_time() - cpu_start
    result["all"] = {"total": percentiles([v for p in samples.values() for v in p["total"]])}
    # CPU of this process (driver threads included; not PostgreSQL's server processes): unlike
    # the latencies, it hardly moves when other work shares the cores.
    result["cpu_ms_per_call"] = round(cpu_s * 1000 / (len(kinds) * calls), 3)
    result["load_1min"] = round(os.getloadavg()[0], 2)
    return result


# --- verify ------------------------------------------------------------------------------------
async def measure_verify(db: Database, *, repeats: int) -> dict[str, Any]:
    """Wall time of `AuditLog.verify()` over the whole chain; exits 1 on any problem."""
    log = AuditLog(db)
    times: list[float] = []
    cpu: list[float] = []
    count = 0
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        count, problems = await log.verify()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        if problems:
            print(f"verify found {len(problems)} problems, first {problems[:3]}", file=sys.stderr)
            raise SystemExit(1)
    best = min(times)
    return {
        "rows": count,
        "best_s": round(best, 2),
        "median_s": round(statistics.median(times), 2),
        "runs_s": [round(t, 2) for t in times],
        "best_cpu_s": round(cpu[times.index(best)], 2),
        "rows_per_s": round(count / best),
        "per_1m_rows_s": round(best * 1_000_000 / max(count, 1), 2),
    }


# --- backends ----------------------------------------------------------------------------------
async def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Migrate, fill, measure calls, then verify, on one database."""
    await asyncio.to_thread(upgrade, url)
    start = datetime.now(UTC) - timedelta(seconds=2.5 * args.rows + 3600)
    print(f"[{name}] filling {args.rows:,} rows", file=sys.stderr, flush=True)
    started = time.perf_counter()
    if name == "sqlite":
        await asyncio.to_thread(fill_sqlite, Path(url.removeprefix("sqlite:///")), args.rows, start)
    else:
        await asyncio.to_thread(fill_postgres, url, args.rows, start)
    fill_s = time.perf_counter() - started
    db = open_database(url)
    try:
        await seed_users(db)
        print(f"[{name}] {args.calls:,} calls of each kind", file=sys.stderr, flush=True)
        calls = await measure_calls(db, calls=args.calls, warmup=args.warmup)
        print(f"[{name}] verify x{args.verify_repeats}", file=sys.stderr, flush=True)
        verify = await measure_verify(db, repeats=args.verify_repeats)
        async with db.engine.connect() as conn:
            server = await conn.scalar(
                select(sqlalchemy.func.sqlite_version())
                if db.is_sqlite
                else sqlalchemy.text("SHOW server_version")
            )
            head = (await conn.execute(select(AuditHead.seq))).scalar_one()
            assert head == verify["rows"], (head, verify["rows"])
            if db.is_sqlite and args.rows:
                # The fill must store `at` as the column type does (text on SQLite).
                stored = (await conn.execute(sqlalchemy.text(STORED_AT), {"last": head})).all()
                shapes = {re.sub(r"\d", "0", at) for (at,) in stored}
                if len(shapes) != 1:
                    raise SystemExit(f"filled and appended rows store `at` differently: {stored}")
    finally:
        await db.dispose()
    return {"server": str(server), "fill_s": round(fill_s, 1), "calls": calls, "verify": verify}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both backends, each on its own fresh database."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dadang-audit-bench-") as tmp:
        results["sqlite"] = await run_backend("sqlite", f"sqlite:///{tmp}/audit.db", args)
    if args.postgres:
        name = f"dadang_bench_audit_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg_admin, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{args.pg_admin.rsplit('/', 1)[0]}/{name}"
            results["postgres"] = await run_backend("postgres", url, args)
        finally:
            with psycopg.connect(args.pg_admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


def report(results: dict[str, Any], machine: str) -> dict[str, Any]:
    """Print the tables; return the one-line summary."""
    print(f"\naudit_overhead — {machine}")
    print(
        f"SQLAlchemy {sqlalchemy.__version__}, aiosqlite {aiosqlite.__version__}, "
        f"psycopg {psycopg.__version__}; servers: "
        + ", ".join(f"{b} {r['server']}" for b, r in results.items())
    )
    print("\nper tool call (ms): gate target + PolicyEngine.decide + AuditLog.append")
    print(
        f"{'backend':<9} {'verdict':<14} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>8}"
        f" | {'decide p50/p99':>15} | {'append p50/p99':>15}"
    )
    summary: dict[str, Any] = {"machine": machine}
    for backend, result in results.items():
        for kind, label in [("allow", "allow (write)"), ("grant", "ask → grant"), ("all", "all")]:
            parts = result["calls"][kind]
            total = parts["total"]
            line = (
                f"{backend:<9} {label:<14} {total['p50']:>7.3f} {total['p95']:>7.3f} "
                f"{total['p99']:>7.3f} {total['max']:>8.3f}"
            )
            if kind != "all":
                d, a = parts["decide"], parts["append"]
                line += (
                    f" | {d['p50']:>6.3f} / {d['p99']:>6.3f} | {a['p50']:>6.3f} / {a['p99']:>6.3f}"
                )
            else:
                calls = result["calls"]
                line += f" | CPU {calls['cpu_ms_per_call']:.3f} ms/call, load {calls['load_1min']}"
            print(line)
        summary[backend] = {
            "call_ms": {k: result["calls"][k]["total"] for k in ("allow", "grant", "all")},
            "cpu_ms_per_call": result["calls"]["cpu_ms_per_call"],
            "verify": {
                k: result["verify"][k] for k in ("rows", "best_s", "median_s", "rows_per_s")
            },
        }
    print("\nAuditLog.verify() over the whole chain")
    print(
        f"{'backend':<9} {'rows':>10} {'best s':>7} {'median s':>9} {'rows/s':>9} {'s per 1M':>9}"
        f" {'CPU s':>6}  (fill s)"
    )
    for backend, result in results.items():
        v = result["verify"]
        print(
            f"{backend:<9} {v['rows']:>10,} {v['best_s']:>7.2f} {v['median_s']:>9.2f} "
            f"{v['rows_per_s']:>9,} {v['per_1m_rows_s']:>9.2f} {v['best_cpu_s']:>6.2f}"
            f"  ({result['fill_s']})"
        )
    sqlite = results["sqlite"]
    verify = sqlite["verify"]
    summary["targets"] = {
        "sqlite_call_p99_lt_2ms": sqlite["calls"]["all"]["total"]["p99"] < CALL_P99_TARGET_MS,
        # Judged on a million rows or more only: small chains say little about large ones.
        "sqlite_verify_1m_lt_10s": (
            verify["per_1m_rows_s"] < VERIFY_TARGET_S if verify["rows"] >= 1_000_000 else None
        ),
    }
    words = {True: "met", False: "MISSED", None: "not judged (< 1M rows)"}
    print(
        "\ntargets (reported, not enforced): "
        + ", ".join(f"{k} {words[v]}" for k, v in summary["targets"].items())
    )
    return summary


def main() -> None:
    # Imported here: run as a script, the repository root is on the path only once `__main__`
    # has put it there.
    from bench.machine import describe

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000, help="measured calls per verdict kind")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured calls per kind first")
    parser.add_argument("--rows", type=int, default=1_000_000, help="audit rows filled before")
    parser.add_argument("--verify-repeats", type=int, default=3, help="verify runs per backend")
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run on PostgreSQL (a fresh database, dropped after)",
    )
    parser.add_argument(
        "--pg-admin", default=PG_ADMIN, help="an existing database to create it from"
    )
    args = parser.parse_args()
    machine = describe()
    results = asyncio.run(run(args))
    summary = report(results, machine)
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    if not __package__:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
