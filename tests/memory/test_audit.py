"""The audit trail: hash-chained, serialised appends, tampering found and located."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from memory.audit import AuditLog
from memory.db import open_database


async def _filled(url: str, rows: int = 10) -> AuditLog:
    log = AuditLog(open_database(url))
    for i in range(rows):
        await log.append(
            actor="agent",
            action="tool_call",
            user_id=1 + i % 2,
            target=f"t{i}",
            detail={"i": i, "text": "回电话"},
        )
    return log


async def _sql(log: AuditLog, statement: str, **params: object) -> None:
    async with log._db.engine.begin() as conn:  # the tamperer's direct database access
        await conn.execute(text(statement), params)


async def test_intact_chain_and_concurrent_appends(db_url: str) -> None:
    log = await _filled(db_url, 5)
    await asyncio.gather(*(log.append(actor="cli", action="x", target=str(i)) for i in range(40)))
    count, problems = await log.verify()
    assert (count, problems) == (45, [])
    assert [r.seq for r in await log.entries(limit=None)] == list(range(1, 46))
    assert all(r.user_id == 2 for r in await log.entries(user_id=2))
    await log._db.dispose()


async def test_edit_delete_reorder_and_truncation_are_reported_with_positions(db_url: str) -> None:
    log = await _filled(db_url)
    await _sql(log, "UPDATE audit_log SET target = 'forged' WHERE seq = 3")
    _, problems = await log.verify()
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]
    await _sql(log, "DELETE FROM audit_log WHERE seq = 3")
    _, problems = await log.verify()
    assert (3, "deleted") in [(p.seq, p.kind) for p in problems]
    # Reorder: rows 6 and 7 swap places in the table (content moves with its id).
    await _sql(log, "UPDATE audit_log SET seq = -6 WHERE seq = 6")
    await _sql(log, "UPDATE audit_log SET seq = 6 WHERE seq = 7")
    await _sql(log, "UPDATE audit_log SET seq = 7 WHERE seq = -6")
    _, problems = await log.verify()
    assert {"reordered", "edited"} & {p.kind for p in problems if p.seq in (6, 7)}
    await _sql(log, "DELETE FROM audit_log WHERE seq >= 9")  # cut off the end
    _, problems = await log.verify()
    assert problems[-1].kind == "truncated"
    await log._db.dispose()


def test_cli_verify_show_export_and_secret_actions_are_audited(clean_environ: Path) -> None:
    env = {**os.environ, "DADANG_HOME": str(clean_environ)}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.cli.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )

    assert cli("secrets", "set", "api.token", stdin="tok-123456789").returncode == 0
    assert cli("secrets", "delete", "api.token").returncode == 0
    shown = cli("audit", "show").stdout
    assert "secret_set api.token" in shown and "secret_delete api.token" in shown
    assert "tok-123456789" not in shown
    exported = cli("audit", "export").stdout.splitlines()
    assert len(exported) == 2 and '"action": "secret_set"' in exported[0]
    ok = cli("audit", "verify")
    assert ok.returncode == 0 and ok.stdout.strip() == "audit log intact: 2 rows"
    import sqlite3

    with sqlite3.connect(clean_environ / "dadang.db") as conn:
        conn.execute("UPDATE audit_log SET target = 'other' WHERE seq = 1")
    broken = cli("audit", "verify")
    assert broken.returncode == 1 and "row 1: edited" in broken.stdout
    assert cli("audit", "show", "--since", "yesterday").returncode == 2
