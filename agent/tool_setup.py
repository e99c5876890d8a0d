"""The tool registry as the service builds it, shared by `dadang run`, `policy check` and
`tools list` so the CLI shows exactly the tools the agent has."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.settings import Settings
from automation.http_tools import SecretResolver, load_http_tools
from automation.tools import ToolRegistry
from automation.tools.builtin import register as register_builtin_tools
from automation.tools.calendar_tools import register_calendar_tools
from automation.tools.scopes import DataScopes

if TYPE_CHECKING:
    from automation.mcp.hub import McpHub

log = logging.getLogger(__name__)

TOOLS_DIR = "tools"
"""`$DADANG_HOME/tools/`: declarative HTTP tools and imported OpenAPI documents (YAML)."""


def calendar_names(settings: Settings) -> list[str]:
    """The names calendars get (`calendar1`, … in the order of DADANG_CALENDAR_URLS)."""
    return [f"calendar{i + 1}" for i in range(len(settings.calendar_urls))]


def build_tools(
    settings: Settings, scopes: DataScopes, *, resolve_secret: SecretResolver | None = None
) -> ToolRegistry:
    """Built-in tools, the calendar tools when a configured calendar is in scope, and the HTTP
    tools of `$DADANG_HOME/tools/*.yaml`.

    A broken tool file does not stop the service: its tools are left out and the problem is in
    `registry.problems` (logged, and shown by `dadang tools list`).
    """
    registry = ToolRegistry()
    register_builtin_tools(registry)
    if any(scopes.allows_calendar(name) for name in calendar_names(settings)):
        register_calendar_tools(registry)
    http_tools, errors = load_http_tools(settings.home / TOOLS_DIR, resolve_secret=resolve_secret)
    for problem in errors:
        registry.problems.append(problem)
    for tool in http_tools:
        if registry.get(tool.name) is not None:
            registry.problems.append(
                f"{tool.source}: tool {tool.name!r} clashes with a built-in tool; rename it"
            )
            continue
        registry.register(tool)
    for problem in registry.problems:
        log.warning("tool not loaded: %s", problem)
    return registry


async def add_mcp_tools(
    registry: ToolRegistry,
    settings: Settings,
    *,
    resolve_secret: SecretResolver | None,
    owner_id: int | None,
) -> McpHub | None:
    """Connect to the configured MCP servers and register their tools; a server that does not
    start is a line in `registry.problems`, not a failed start. Close the hub when done.

    None without servers: the MCP SDK takes a second to import, which nobody without a
    server should pay at every start.
    """
    if not settings.mcp_servers:
        return None
    from automation.mcp.hub import McpHub

    hub = McpHub(settings.mcp_servers, resolve_secret=resolve_secret, owner_user_id=owner_id)
    registry.problems.extend(await hub.start())
    for tool in hub.tools():
        if registry.get(tool.name) is not None:
            registry.problems.append(
                f"{tool.source}: tool {tool.name!r} clashes with another tool; rename the server"
            )
            continue
        registry.register(tool)
    return hub
