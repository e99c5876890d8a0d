"""`dadang tools list`: every tool the agent has, where it comes from, and what the policy says.

`dadang tools import-openapi` (in `tools_import`) is registered on the same app.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from agent.cli.common import migrate_or_exit, settings_or_exit
from agent.cli.tool_access import register as register_access_commands
from agent.cli.tool_access import user_rules
from agent.cli.tools_import import import_openapi_command
from agent.errors import ConfigError
from agent.policy.engine import PolicyEngine
from agent.policy.rules import Policy
from agent.runtime.secret_access import StoredSecrets
from agent.tool_setup import add_mcp_tools, build_tools
from automation.tools import ToolRegistry
from memory.db import open_database
from memory.identities import IdentityStore
from memory.tool_access import AccessRule, is_enabled

tools_app = typer.Typer(
    help="List the agent's tools, import HTTP tools from OpenAPI, switch tools on per user."
)
tools_app.command("import-openapi")(import_openapi_command)
register_access_commands(tools_app)


@tools_app.command("list")
def list_tools(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="also show whether each tool is on for U")
    ] = None,
) -> None:
    """Every registered tool: source, risk, data it reads, and what the policy requires.

    MCP servers in dadang.toml are connected to list their tools. Tool files or servers that
    failed to load are listed on stderr with what to fix.
    """
    settings = settings_or_exit()
    try:
        policy = Policy.load(settings.home)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    registry = build_tools(settings, policy.scopes)
    access = user_rules(user) if user else None

    async def collect() -> list[dict[str, Any]]:
        if not settings.mcp_servers:
            return await _rows(registry, PolicyEngine(policy), access)
        # MCP servers may need the owner's secrets (a bearer token) to list their tools.
        migrate_or_exit(settings)
        db = open_database(settings.effective_database_url)
        hub = None
        try:
            owner = await IdentityStore(db).ensure_owner(name=settings.owner_name)
            hub = await add_mcp_tools(
                registry, settings, resolve_secret=StoredSecrets(db, settings), owner_id=owner.id
            )
            return await _rows(registry, PolicyEngine(policy), access)
        finally:
            if hub is not None:
                await hub.close()
            await db.dispose()

    rows = asyncio.run(collect())
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        _print_table(rows, with_access=access is not None)
    for problem in registry.problems:
        typer.echo(f"not loaded: {problem}", err=True)


async def _rows(
    registry: ToolRegistry,
    engine: PolicyEngine,
    access: tuple[int, bool, list[AccessRule]] | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        tool = registry.get(name)
        assert tool is not None
        verdict = await engine.decide(user_id=0, name=name, tool=tool, target="")
        row: dict[str, Any] = {
            "name": name,
            "source": tool.source,
            "risk": tool.risk.value if tool.risk else "undeclared",
            "reads": sorted(tool.reads),
            "untrusted_output": tool.untrusted_output,
            "policy": verdict.decision.value,
            "rule": verdict.rule,
            "description": tool.description,
        }
        if access is not None:
            _, owner, rules = access
            row["enabled"] = is_enabled(name, tool.source, owner=owner, rules=rules)
        rows.append(row)
    return rows


def _print_table(rows: list[dict[str, Any]], *, with_access: bool) -> None:
    name_width = max([24, *(len(r["name"]) for r in rows)])
    source_width = max([10, *(len(r["source"]) for r in rows)])
    head = f"{'tool':<{name_width}} {'source':<{source_width}} {'risk':<14} {'policy':<7} "
    typer.echo(head + ("enabled " if with_access else "") + "reads")
    for row in rows:
        line = (
            f"{row['name']:<{name_width}} {row['source']:<{source_width}} {row['risk']:<14} "
            f"{row['policy']:<7} "
        )
        if with_access:
            line += f"{'yes' if row['enabled'] else 'no':<8}"
        typer.echo(line + (",".join(row["reads"]) or "-"))
