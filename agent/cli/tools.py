"""`dadang tools list`: every tool the agent has, where it comes from, and what the policy says."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from agent.cli.common import settings_or_exit
from agent.errors import ConfigError
from agent.policy.engine import PolicyEngine
from agent.policy.rules import Policy
from agent.tool_setup import build_tools

tools_app = typer.Typer(help="List the agent's tools.")


@tools_app.command("list")
def list_tools(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Every registered tool: source, risk, data it reads, and what the policy requires."""
    settings = settings_or_exit()
    try:
        policy = Policy.load(settings.home)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    registry = build_tools(settings, policy.scopes)
    engine = PolicyEngine(policy)
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        tool = registry.get(name)
        assert tool is not None
        verdict = asyncio.run(engine.decide(user_id=0, name=name, tool=tool, target=""))
        rows.append(
            {
                "name": name,
                "source": tool.source,
                "risk": tool.risk.value if tool.risk else "undeclared",
                "reads": sorted(tool.reads),
                "untrusted_output": tool.untrusted_output,
                "policy": verdict.decision.value,
                "rule": verdict.rule,
                "description": tool.description,
            }
        )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    typer.echo(f"{'tool':<24} {'source':<10} {'risk':<14} {'policy':<7} reads")
    for row in rows:
        typer.echo(
            f"{row['name']:<24} {row['source']:<10} {row['risk']:<14} {row['policy']:<7} "
            f"{','.join(row['reads']) or '-'}"
        )
