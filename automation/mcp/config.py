"""`McpServerConfig`: one `[[mcp_servers]]` table of `dadang.toml` (or `DADANG_MCP_SERVERS` JSON).

Kept free of the MCP SDK so that loading settings does not import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from automation.tools.base import RiskLevel

ServerName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,40}$")]
Risk = Annotated[RiskLevel, Strict(False)]
"""A risk level; TOML and env values are strings, so the enum is not strict."""


class McpServerConfig(BaseModel):
    """How to reach one MCP server, and how far to trust its tools."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: ServerName
    """Short id (`a-z`, `0-9`, `_`, `-`): prefixes its tool names; the audit says `mcp:<name>`."""
    command: list[str] | None = Field(default=None, min_length=1)
    """stdio server: the program and its arguments, e.g. `["npx", "-y", "@scope/server"]`."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment for a stdio server (only PATH, HOME, USER, … are inherited)."""
    cwd: str | None = None
    """Working directory of a stdio server."""
    url: str | None = Field(default=None, pattern=r"^https?://")
    """Streamable HTTP server endpoint, e.g. `https://mcp.example.com/mcp`."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers sent to a URL server."""
    bearer_secret: str | None = None
    """Name of a secret (`dadang secrets set NAME`, the owner's) sent as `Authorization: Bearer`."""
    risk: Risk | None = None
    """Risk of every tool of this server; unset: the tool's annotations decide, else the
    policy's `unknown_tool` rule (ask)."""
    tool_risks: dict[str, Risk] = Field(default_factory=dict)
    """Risk per tool, by the server's own tool name; wins over `risk` and annotations."""
    include: list[str] | None = None
    """Only these tools (server's names) are offered to the model; unset: all."""
    exclude: list[str] = Field(default_factory=list)
    """Tools (server's names) never offered to the model."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds one tool call may take."""
    startup_timeout: float = Field(default=20.0, gt=0)
    """Seconds to start (or reach) the server and list its tools."""
    enabled: bool = True
    """False keeps the table in the file without starting the server."""

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                f"MCP server {self.name!r}: set either `command` (stdio) or `url` (HTTP)"
            )
        if self.url is None and (self.headers or self.bearer_secret):
            raise ValueError(
                f"MCP server {self.name!r}: `headers` and `bearer_secret` need a `url`"
            )
        if self.command is None and (self.env or self.cwd):
            raise ValueError(f"MCP server {self.name!r}: `env` and `cwd` need a `command`")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        """`stdio` for a command, `http` for a URL."""
        return "stdio" if self.command is not None else "http"

    def offers(self, tool: str) -> bool:
        """Whether the server's tool `tool` passes `include` / `exclude`."""
        if tool in self.exclude:
            return False
        return self.include is None or tool in self.include

    def risk_for(self, tool: str, *, read_only: bool, destructive: bool) -> RiskLevel | None:
        """The tool's risk: configured (`tool_risks`, then `risk`) before the server's hints.

        Annotations are the server's claims, so they only fill a gap the owner left: a
        `readOnlyHint` tool reads, a `destructiveHint` one is irreversible, anything else stays
        undeclared (the policy asks).
        """
        configured = self.tool_risks.get(tool, self.risk)
        if configured is not None:
            return configured
        if read_only:
            return RiskLevel.READ
        if destructive:
            return RiskLevel.IRREVERSIBLE
        return None


def check_unique(configs: Iterable[McpServerConfig]) -> None:
    """Raise ValueError naming a server that appears twice.

    Raises:
        ValueError: two servers share a name (their tools and audit source would collide).
    """
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ValueError(f"two MCP servers are called {config.name!r}; names must be unique")
        seen.add(config.name)
