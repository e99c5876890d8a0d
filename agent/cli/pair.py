"""`dadang pair list|approve|reject`: the owner decides who may talk to the assistant."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agent.cli.common import ready_settings
from agent.runtime.replies import reply
from memory.db import open_database
from memory.identities import IdentityStore, Pairing
from memory.outbox import OutboxStore

pair_app = typer.Typer(help="Approve or reject people who asked to use this assistant.")


@pair_app.command("list")
def list_pairings(
    all_: Annotated[bool, typer.Option("--all", help="Include decided requests")] = False,
) -> None:
    """Show pairing requests (pending ones by default)."""
    settings = ready_settings()

    async def go() -> list[Pairing]:
        db = open_database(settings.effective_database_url)
        try:
            return await IdentityStore(db).pairings(status=None if all_ else "pending")
        finally:
            await db.dispose()

    rows = asyncio.run(go())
    if not rows:
        typer.echo("no pairing requests")
    for p in rows:
        typer.echo(
            f"{p.code}  {p.status:<8}  {p.channel}:{p.external_id}  {p.display_name or ''}  "
            f"{p.created_at:%Y-%m-%d %H:%M} UTC"
        )


@pair_app.command("approve")
def approve(
    code: str,
    as_owner: Annotated[
        bool, typer.Option("--as-owner", help="Link to the owner: same memory as your terminal")
    ] = False,
) -> None:
    """Admit the person who was given CODE; they are told they can start."""
    _decide(code, approve=True, as_owner=as_owner)


@pair_app.command("reject")
def reject(code: str) -> None:
    """Refuse the request with CODE."""
    _decide(code, approve=False, as_owner=False)


def _decide(code: str, *, approve: bool, as_owner: bool) -> None:
    settings = ready_settings()

    async def go() -> Pairing | None:
        db = open_database(settings.effective_database_url)
        try:
            store = IdentityStore(db)
            owner = await store.owner() if as_owner else None
            decided = await store.decide_pairing(
                code, approve=approve, user_id=owner.id if owner else None
            )
            if decided is not None and approve:
                # The running service delivers this from the outbox.
                await OutboxStore(db).add(
                    channel=decided.channel,
                    chat_id=decided.chat_id,
                    text=reply("paired", "en") + "\n" + reply("paired", "zh"),
                )
            return decided
        finally:
            await db.dispose()

    decided = asyncio.run(go())
    if decided is None:
        typer.echo(
            f"no pending pairing request with code {code.upper()}; see `dadang pair list`", err=True
        )
        raise typer.Exit(1)
    verb = "approved" if approve else "rejected"
    typer.echo(f"{verb} {decided.channel}:{decided.external_id} ({decided.display_name or '-'})")
