"""`dadang proactive log`: every proactive decision, silent ones included, with its reason."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from memory.db import open_database
from memory.identities import IdentityStore
from memory.proactive import LogEntry, ProactiveStore

proactive_app = typer.Typer(help="What the assistant decided to say (or not) on its own.")


def _json(entry: LogEntry) -> str:
    return json.dumps(
        {
            "id": entry.id,
            "user_id": entry.user_id,
            "at": entry.at.isoformat(),
            "source": entry.source,
            "decision": entry.decision,
            "reason": entry.reason,
            "text": entry.text,
            "ref": entry.ref,
            "model_calls": entry.model_calls,
            "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens,
        },
        ensure_ascii=False,
    )


@proactive_app.command("log")
def log_command(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user")] = None,
    limit: Annotated[int, typer.Option(help="newest N decisions")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Heartbeat, follow-up and briefing decisions, newest first."""
    settings = ready_settings()

    async def go() -> list[LogEntry]:
        db = open_database(settings.effective_database_url)
        try:
            user_id = await resolve_user(IdentityStore(db), user) if user else None
            return await ProactiveStore(db).entries(user_id=user_id, limit=limit)
        finally:
            await db.dispose()

    entries = asyncio.run(go())
    for entry in entries:
        if as_json:
            typer.echo(_json(entry))
            continue
        calls = (
            f" [{entry.model_calls} call(s), {entry.prompt_tokens}+{entry.completion_tokens} tok]"
        )
        text = f" — {entry.text}" if entry.text else ""
        typer.echo(
            f"{entry.at:%Y-%m-%d %H:%M} user {entry.user_id} {entry.source:<9} "
            f"{entry.decision:<8} {entry.reason}{calls if entry.model_calls else ''}{text}"
        )
    if not entries and not as_json:
        typer.echo("no proactive decisions yet", err=True)
