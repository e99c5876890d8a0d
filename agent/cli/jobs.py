"""`dadang jobs list|add|cancel|pause|resume`: reminders and recurring tasks from the shell.

Works whether or not `dadang run` is running: jobs go straight to the shared job store, where a
running scheduler sees them within `scheduler_poll` seconds, and a stopped one at its next start
(a job whose time passed meanwhile fires once, marked late).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from agent.settings import Settings
from automation.scheduler.engine import JobEngine
from automation.scheduler.reminders import KIND, ReminderError, ReminderService, local_time
from memory.db import open_database, open_sync_engine
from memory.identities import IdentityStore
from memory.proactive_models import ReminderKind, ReminderOrigin, ReminderStatus
from memory.reminders import ReminderRecord, ReminderStore

jobs_app = typer.Typer(help="List, add, cancel, pause and resume reminders and recurring tasks.")
T = TypeVar("T")
UserOption = Annotated[
    str, typer.Option("--user", "-u", help="user id, owner, telegram:<telegram user id> or name")
]


def _run(body: Callable[[ReminderService, IdentityStore, Settings], Awaitable[T]]) -> T:
    settings = ready_settings()

    async def go() -> T:
        db = open_database(settings.effective_database_url)
        sync = open_sync_engine(db.url)
        engine = JobEngine(sync)
        await asyncio.to_thread(engine.start)  # paused: edits jobs, never fires them
        identities = IdentityStore(db)
        await identities.ensure_owner(name=settings.owner_name)
        service = ReminderService(
            ReminderStore(db), engine, max_per_user=settings.reminders_max_per_user
        )
        try:
            return await body(service, identities, settings)
        finally:
            await asyncio.to_thread(engine.shutdown)
            sync.dispose()
            await db.dispose()

    return asyncio.run(go())


async def _user(identities: IdentityStore, spec: str, settings: Settings) -> int:
    channel, _, external = spec.partition(":")
    if channel == "telegram" and external.isdigit():
        found = await identities.user_for("telegram", external)
        if found is None and int(external) in settings.telegram_allowed_users:
            # Allow-listed but not written yet: link the way the runtime will on first contact.
            owner = await identities.owner()
            first = settings.telegram_allowed_users[0] == int(external)
            return await identities.link(
                user_id=owner.id if owner and first else None,
                channel="telegram",
                external_id=external,
                display_name=None,
            )
    return await resolve_user(identities, spec)


def _reminder_id(value: str) -> int:
    text = value.removeprefix(f"{KIND}:").lstrip("#")
    if not text.isdigit():
        typer.echo(f"error: {value!r} is not a job id (e.g. 12 or reminder:12)", err=True)
        raise typer.Exit(2)
    return int(text)


def _as_json(record: ReminderRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "job_id": f"{KIND}:{record.id}",
        "user_id": record.user_id,
        "status": record.status,
        "kind": record.kind,
        "text": record.text,
        "at": record.at.isoformat() if record.at else None,
        "cron": record.cron,
        "rrule": record.rrule,
        "timezone": record.timezone,
        "next_run_at": record.next_run_at.isoformat() if record.next_run_at else None,
        "origin": record.origin,
        "fired_count": record.fired_count,
    }


def _line(record: ReminderRecord) -> str:
    when = local_time(record.next_run_at, record.timezone) if record.next_run_at else "-"
    rule = record.cron or record.rrule or "once"
    return (
        f"{record.id:>6}  user {record.user_id:<4} {record.status:<9} {when:<22} "
        f"{rule:<16} {record.text}"
    )


@jobs_app.command("list")
def list_jobs(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include done, cancelled, missed")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 200,
) -> None:
    """Upcoming reminders, soonest first."""

    async def body(service: ReminderService, identities: IdentityStore, s: Settings) -> None:
        user_id = await _user(identities, user, s) if user else None
        statuses = tuple(ReminderStatus) if all_ else (ReminderStatus.ACTIVE, ReminderStatus.PAUSED)
        records = await service.store.listing(user_id=user_id, statuses=statuses, limit=limit)
        for record in records:
            typer.echo(
                json.dumps(_as_json(record), ensure_ascii=False) if as_json else _line(record)
            )
        if not records and not as_json:
            typer.echo("no reminders", err=True)

    _run(body)


@jobs_app.command("add")
def add_job(
    user: UserOption,
    text: Annotated[str, typer.Option("--text", "-t", help="what to remind about")],
    at: Annotated[
        str | None, typer.Option("--at", help="ISO 8601 time; without offset: the user's zone")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="5-field cron, e.g. '0 9 * * 1-5'")
    ] = None,
    rrule: Annotated[str | None, typer.Option("--rrule", help="RFC 5545 RRULE")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="IANA zone (default: the user's)")] = None,
    task: Annotated[
        bool, typer.Option("--task", help="run the text as a request to the agent")
    ] = False,
) -> None:
    """Schedule a reminder; prints its job id."""

    async def body(service: ReminderService, identities: IdentityStore, s: Settings) -> int:
        user_id = await _user(identities, user, s)
        person = await identities.get_user(user_id)
        zone = tz or (person.timezone if person else None) or s.timezone
        try:
            record, _ = await service.create(
                user_id=user_id,
                text=text,
                timezone=zone,
                at=at,
                cron=cron,
                rrule=rrule,
                kind=ReminderKind.AGENT if task else ReminderKind.MESSAGE,
                origin=ReminderOrigin.CLI,
            )
        except ReminderError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        when = local_time(record.next_run_at, zone) if record.next_run_at else "-"
        typer.echo(f"scheduled for user {user_id}: next {when} ({zone})", err=True)
        return record.id

    typer.echo(_run(body))


def _change(job: str, action: str) -> None:
    reminder_id = _reminder_id(job)

    async def body(service: ReminderService, identities: IdentityStore, s: Settings) -> str:
        operations = {"cancel": service.cancel, "pause": service.pause, "resume": service.resume}
        try:
            record = await operations[action](reminder_id)
        except ReminderError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        return _line(record)

    typer.echo(_run(body))


@jobs_app.command("cancel")
def cancel_job(job: Annotated[str, typer.Argument(help="job id (12 or reminder:12)")]) -> None:
    """Cancel a reminder."""
    _change(job, "cancel")


@jobs_app.command("pause")
def pause_job(job: Annotated[str, typer.Argument(help="job id (12 or reminder:12)")]) -> None:
    """Stop a reminder firing, keeping it."""
    _change(job, "pause")


@jobs_app.command("resume")
def resume_job(job: Annotated[str, typer.Argument(help="job id (12 or reminder:12)")]) -> None:
    """Fire a paused reminder again."""
    _change(job, "resume")
