"""`dadang policy check|grants|ungrant`: read the rules in force and the standing grants."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from agent.cli.common import migrate_or_exit, ready_settings, settings_or_exit
from agent.cli.users import resolve_user
from agent.errors import ConfigError
from agent.policy.engine import PolicyEngine
from agent.policy.rules import POLICY_FILE, Policy
from agent.settings import Settings
from agent.tool_setup import build_tools
from memory.audit import AuditLog
from memory.db import open_database
from memory.grants import GrantStore
from memory.identities import IdentityStore

policy_app = typer.Typer(help="Check the policy file and manage 'Always allow' grants.")
UserOption = Annotated[str | None, typer.Option("--user", "-u", help="only this user's grants")]


@policy_app.command("check")
def check() -> None:
    """Validate policy.yaml and show what each tool needs, and the data scopes."""
    settings = settings_or_exit()
    path = settings.home / POLICY_FILE
    try:
        policy = Policy.load(settings.home)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    registry = build_tools(settings, policy.scopes)
    engine = PolicyEngine(policy)
    source = str(path) if path.exists() else f"{path} (absent: documented defaults)"
    typer.echo(f"policy: {source}\ndigest: {policy.digest[:16]}\n")
    typer.echo(f"{'tool':<24} {'risk':<14} {'needs':<6} rule")
    for name in registry.names():
        tool = registry.get(name)
        verdict = asyncio.run(engine.decide(user_id=0, name=name, tool=tool, target=""))
        risk = tool.risk.value if tool and tool.risk else "undeclared"
        typer.echo(f"{name:<24} {risk:<14} {verdict.decision.value:<6} {verdict.rule}")
    rules = policy.rules
    typer.echo(f"\nunknown tools: {rules.unknown_tool}")
    for field in ("memory_kinds", "calendars", "sites", "api_hosts"):
        typer.echo(f"scope {field}: {', '.join(getattr(rules.scopes, field)) or '(none)'}")
    typer.echo(
        f"approvals expire after {rules.approvals.expire_minutes} min; "
        f"'Always allow' {'offered' if rules.approvals.always_allow else 'off'}; "
        f"prompts in audit: {'yes' if rules.audit.log_prompts else 'no'}"
    )
    typer.echo(
        "after untrusted content (web pages, invites) every write or send asks, whatever the rules"
    )
    if path.exists():
        _record(settings, policy)


def _record(settings: Settings, policy: Policy) -> None:
    migrate_or_exit(settings)

    async def go() -> bool:
        db = open_database(settings.effective_database_url)
        try:
            return await GrantStore(db, AuditLog(db)).record_policy(
                policy.digest, policy.text, source="cli"
            )
        finally:
            await db.dispose()

    if asyncio.run(go()):
        typer.echo("(recorded in the audit trail as a policy change)")


@policy_app.command("grants")
def grants(user: UserOption = None) -> None:
    """List 'Always allow this' grants."""
    settings = ready_settings()

    async def go() -> None:
        db = open_database(settings.effective_database_url)
        try:
            identities = IdentityStore(db)
            await identities.ensure_owner(name=settings.owner_name)
            user_id = await resolve_user(identities, user) if user else None
            rows = await GrantStore(db, AuditLog(db)).listing(user_id)
        finally:
            await db.dispose()
        if not rows:
            typer.echo("no grants")
        for g in rows:
            typer.echo(
                f"#{g.id}  user {g.user_id}  {g.tool}  {g.target or '(any target)'}  "
                f"since {g.created_at:%Y-%m-%d %H:%M} UTC"
            )

    asyncio.run(go())


@policy_app.command("ungrant")
def ungrant(grant_id: int, user: UserOption = None) -> None:
    """Withdraw grant GRANT_ID: the tool asks again."""
    settings = ready_settings()

    async def go() -> bool:
        db = open_database(settings.effective_database_url)
        try:
            identities = IdentityStore(db)
            await identities.ensure_owner(name=settings.owner_name)
            user_id = await resolve_user(identities, user) if user else None
            return (
                await GrantStore(db, AuditLog(db)).withdraw(grant_id, user_id=user_id) is not None
            )
        finally:
            await db.dispose()

    if not asyncio.run(go()):
        typer.echo(f"error: no grant #{grant_id}; see `dadang policy grants`", err=True)
        raise typer.Exit(1)
    typer.echo(f"withdrew grant #{grant_id}")
