"""`dadang tools enable|disable|reset`: which tools a user may use.

Built-in tools are on for everyone; HTTP, OpenAPI and MCP tools (they reach the owner's
systems) are on for the owner only until switched on for someone else. The running service
reads the switches at every request, so a change applies to the next message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from memory.audit import AuditLog
from memory.db import open_database
from memory.identities import IdentityStore
from memory.tool_access import AccessRule, ToolAccess

T = TypeVar("T")
PatternArg = Annotated[
    str, typer.Argument(help="a tool name, a pattern (office_*) or a source (openapi:office)")
]
UserOption = Annotated[str, typer.Option("--user", "-u", help="user id, owner, CHANNEL:ID or name")]


def register(app: typer.Typer) -> None:
    """Add the access commands to `dadang tools`."""
    app.command("enable")(enable)
    app.command("disable")(disable)
    app.command("reset")(reset)


def enable(pattern: PatternArg, user: UserOption) -> None:
    """Switch tools on for a user."""
    _switch(pattern, user, enabled=True)


def disable(pattern: PatternArg, user: UserOption) -> None:
    """Switch tools off for a user (the owner included)."""
    _switch(pattern, user, enabled=False)


def reset(pattern: PatternArg, user: UserOption) -> None:
    """Remove a switch: the default applies again."""

    async def body(access: ToolAccess, user_id: int, owner: bool) -> bool:
        return await access.clear(user_id, pattern)

    if not _run(user, body):
        typer.echo(f"error: user {user} has no switch for {pattern!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{pattern}: back to the default for user {user}")


def user_rules(user: str) -> tuple[int, bool, list[AccessRule]]:
    """(user id, is the owner, their switches), for `dadang tools list --user`."""

    async def body(
        access: ToolAccess, user_id: int, owner: bool
    ) -> tuple[int, bool, list[AccessRule]]:
        return user_id, owner, await access.rules(user_id)

    return _run(user, body)


def _switch(pattern: str, user: str, *, enabled: bool) -> None:
    async def body(access: ToolAccess, user_id: int, owner: bool) -> None:
        await access.set(user_id, pattern, enabled=enabled)

    _run(user, body)
    typer.echo(f"{pattern}: {'enabled' if enabled else 'disabled'} for user {user}")


def _run(user: str, body: Callable[[ToolAccess, int, bool], Awaitable[T]]) -> T:
    settings = ready_settings()

    async def go() -> T:
        db = open_database(settings.effective_database_url)
        try:
            identities = IdentityStore(db)
            owner = await identities.ensure_owner(name=settings.owner_name)
            user_id = await resolve_user(identities, user)
            return await body(ToolAccess(db, AuditLog(db)), user_id, user_id == owner.id)
        finally:
            await db.dispose()

    return asyncio.run(go())
