"""`McpHub`: every configured MCP server, started together, offered as Dadang tools.

A server that fails to start is reported and left out; it never stops the others or the
service. A server that dies later is restarted by its connection (see `connection`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, TextIO

from automation.http_tools.tool import SecretResolver
from automation.mcp.config import McpServerConfig, check_unique
from automation.mcp.connection import McpConnection
from automation.mcp.tool import McpTool, build_tool, tool_name

log = logging.getLogger(__name__)


class McpHub:
    """The MCP servers of `dadang.toml`; `start`, then `tools`, and `close` at shutdown."""

    def __init__(
        self,
        configs: Sequence[McpServerConfig],
        *,
        resolve_secret: SecretResolver | None = None,
        owner_user_id: int | None = None,
        errlog: TextIO | None = None,
    ) -> None:
        """`owner_user_id`: whose secrets `bearer_secret` names (one connection serves every
        user); `errlog`: where stdio servers' stderr goes (default: ours).

        Raises:
            ValueError: two servers share a name.
        """
        check_unique(configs)
        self._connections = [
            McpConnection(
                config,
                resolve_secret=resolve_secret,
                owner_user_id=owner_user_id,
                errlog=errlog,
            )
            for config in configs
            if config.enabled
        ]
        self._disabled = [config.name for config in configs if not config.enabled]
        self._tools: list[McpTool] = []

    async def start(self) -> list[str]:
        """Start every enabled server concurrently; one error line per server that failed."""
        results = await asyncio.gather(*(c.start() for c in self._connections))
        errors = [error for error in results if error is not None]
        self._tools = self._build_tools()
        for error in errors:
            log.warning("MCP server not started: %s", error)
        return errors

    def tools(self) -> list[McpTool]:
        """The tools of the servers that started, filtered by `include` / `exclude`."""
        return list(self._tools)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per server: transport, connected, tool count (offered), restarts, last error."""
        offered: dict[str, int] = {}
        for tool in self._tools:
            offered[tool.source] = offered.get(tool.source, 0) + 1
        status: dict[str, dict[str, Any]] = {}
        for connection in self._connections:
            entry = connection.status()
            entry["tools"] = offered.get(f"mcp:{connection.name}", 0)
            status[connection.name] = entry
        for name in self._disabled:
            status[name] = {"connected": False, "tools": 0, "enabled": False}
        return status

    async def close(self) -> None:
        """Stop every server and wait for their tasks; safe to call twice."""
        await asyncio.gather(*(c.close() for c in self._connections))

    def _build_tools(self) -> list[McpTool]:
        taken: set[str] = set()
        tools: list[McpTool] = []
        for connection in self._connections:
            config = connection.config
            names = {info.name for info in connection.tools}
            named = {*(config.include or ()), *config.tool_risks, *config.exclude}
            for unknown in sorted(named - names) if connection.connected else ():
                log.warning("MCP server %r has no tool %r (dadang.toml)", config.name, unknown)
            for info in connection.tools:
                if not config.offers(info.name):
                    continue
                name = tool_name(config.name, info.name, taken=taken)
                taken.add(name)
                tools.append(build_tool(connection, info, name=name))
        return tools
