"""`dadang approvals list|approve|reject`: answer approval requests from the terminal.

The decision is written to the database; the running service notices it within seconds and
resumes the paused turn (see `ApprovalDesk.tick`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from agent.policy.approvals import describe
from memory.approvals import ApprovalStore
from memory.audit import AuditLog
from memory.db import open_database
from memory.identities import IdentityStore

approvals_app = typer.Typer(help="List and answer the assistant's approval requests.")
UserOption = Annotated[str | None, typer.Option("--user", "-u", help="only this user's requests")]


@approvals_app.command("list")
def list_approvals(
    user: UserOption = None,
    all_: Annotated[bool, typer.Option("--all", help="include decided requests")] = False,
) -> None:
    """Show pending requests (all with --all), newest first."""
    settings = ready_settings()

    async def go() -> None:
        db = open_database(settings.effective_database_url)
        try:
            identities = IdentityStore(db)
            await identities.ensure_owner(name=settings.owner_name)
            user_id = await resolve_user(identities, user) if user else None
            rows = await ApprovalStore(db, AuditLog(db)).listing(
                user_id=user_id, status=None if all_ else "pending"
            )
        finally:
            await db.dispose()
        if not rows:
            typer.echo("no approval requests" if all_ else "no pending approval requests")
        for r in rows:
            what = describe(r.tool, r.risk, r.target, r.arguments).replace("\n", "  ")
            typer.echo(
                f"#{r.id}  {r.status:<8}  user {r.user_id}  {r.created_at:%Y-%m-%d %H:%M} UTC  "
                f"{what}  — {r.reason}"
            )

    asyncio.run(go())


@approvals_app.command("approve")
def approve(
    approval_id: int,
    always: Annotated[bool, typer.Option("--always", help="also allow it from now on")] = False,
) -> None:
    """Approve request APPROVAL_ID; the paused turn continues."""
    _decide(approval_id, approve=True, always=always)


@approvals_app.command("reject")
def reject(approval_id: int) -> None:
    """Reject request APPROVAL_ID; the assistant is told and remembers it."""
    _decide(approval_id, approve=False, always=False)


def _decide(approval_id: int, *, approve: bool, always: bool) -> None:
    settings = ready_settings()

    async def go() -> tuple[str | None, bool]:
        db = open_database(settings.effective_database_url)
        try:
            record, changed = await ApprovalStore(db, AuditLog(db)).decide(
                approval_id, approve=approve, always=always, via="cli"
            )
        finally:
            await db.dispose()
        return (record.status if record else None), changed

    status, changed = asyncio.run(go())
    if status is None:
        typer.echo(f"error: no approval request #{approval_id}", err=True)
        raise typer.Exit(1)
    if not changed:
        typer.echo(f"error: request #{approval_id} is already {status}", err=True)
        raise typer.Exit(1)
    typer.echo(f"request #{approval_id} {status}; the assistant continues within seconds")
