"""`dadang audit show|verify|export`: the trail of what the assistant did and read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from memory.audit import AuditLog, AuditRecord
from memory.db import open_database
from memory.identities import IdentityStore

audit_app = typer.Typer(help="Show, verify and export the audit trail.")
T = TypeVar("T")
UserOption = Annotated[str | None, typer.Option("--user", "-u", help="only this user's rows")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="ISO 8601 time, e.g. 2026-11-26T00:00+08:00")
]


def _run(body: Callable[[AuditLog, IdentityStore], Awaitable[T]]) -> T:
    settings = ready_settings()

    async def go() -> T:
        db = open_database(settings.effective_database_url)
        try:
            return await body(AuditLog(db), IdentityStore(db))
        finally:
            await db.dispose()

    return asyncio.run(go())


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        typer.echo(f"error: --since {value!r} is not an ISO 8601 time", err=True)
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        typer.echo("error: --since needs a UTC offset (e.g. +08:00 or Z)", err=True)
        raise typer.Exit(2)
    return moment


def _json(record: AuditRecord) -> str:
    return json.dumps(
        {
            "seq": record.seq,
            "at": record.at.isoformat(),
            "user_id": record.user_id,
            "actor": record.actor,
            "action": record.action,
            "target": record.target,
            "detail": record.detail,
        },
        ensure_ascii=False,
    )


async def _records(
    log: AuditLog, identities: IdentityStore, user: str | None, since: str | None, limit: int | None
) -> list[AuditRecord]:
    user_id = await resolve_user(identities, user) if user else None
    return await log.entries(user_id=user_id, since=_since(since), limit=limit)


@audit_app.command("show")
def show(
    user: UserOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 100,
) -> None:
    """Rows in the order they were written."""

    async def body(log: AuditLog, identities: IdentityStore) -> list[AuditRecord]:
        return await _records(log, identities, user, since, limit)

    for r in _run(body):
        detail = json.dumps(r.detail, ensure_ascii=False)
        typer.echo(
            f"{r.seq:>7} {r.at:%Y-%m-%d %H:%M:%S} user {r.user_id} {r.actor} {r.action} "
            f"{r.target} {detail}"
        )


@audit_app.command("export")
def export(user: UserOption = None, since: SinceOption = None) -> None:
    """JSON Lines on stdout."""

    async def body(log: AuditLog, identities: IdentityStore) -> list[AuditRecord]:
        return await _records(log, identities, user, since, None)

    for record in _run(body):
        typer.echo(_json(record))


@audit_app.command("verify")
def verify() -> None:
    """Recompute the hash chain; exit 1 listing every edited, deleted or reordered row."""

    async def body(log: AuditLog, identities: IdentityStore) -> tuple[int, list[str]]:
        count, problems = await log.verify()
        return count, [f"row {p.seq}: {p.kind}: {p.message}" for p in problems]

    count, problems = _run(body)
    if problems:
        for line in problems:
            typer.echo(line)
        typer.echo(f"audit log damaged: {len(problems)} problem(s) in {count} rows", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {count} rows")
