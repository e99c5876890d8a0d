"""`McpTool`: one tool of an MCP server as a Dadang `Tool` (`source = "mcp:<server>"`).

The model sees the server's own JSON schema (compacted like every tool's), and arguments are
checked against that schema here, so a wrong call gets a precise message without a round trip;
rebuilding the schema as a pydantic model would lose `anyOf`, `$ref`s and nested objects.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar, Final, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from mcp_types import Tool as McpToolInfo
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from automation.mcp.config import McpServerConfig
from automation.mcp.connection import McpConnection
from automation.mcp.content import render, truncate
from automation.mcp.errors import McpCallError
from automation.tools.base import Tool, ToolContext, ToolError, compact_schema

MAX_NAME: Final = 64
"""OpenAI-style function names: `[a-z0-9_]`, at most 64 characters."""
MAX_DESCRIPTION: Final = 1024
"""The server writes the description and it is in every prompt: keep it bounded."""
MAX_ERROR: Final = 2000
MAX_PROBLEMS: Final = 5


class McpArguments(BaseModel):
    """The arguments as sent, checked against the server's schema (`input_schema`)."""

    model_config = ConfigDict(extra="allow")
    input_schema: ClassVar[dict[str, Any]] = {}
    validator: ClassVar[Any] = None
    """A jsonschema validator for `input_schema`; None when the schema itself is broken (the
    server then judges the arguments alone)."""

    @model_validator(mode="before")
    @classmethod
    def _matches_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise PydanticCustomError("mcp_arguments", "expected an object of named arguments")
        if cls.validator is not None:
            problems = _problems(cls.validator, data)
            if problems:
                raise PydanticCustomError("mcp_arguments", "{problems}", {"problems": problems})
        return data


class McpTool(Tool[McpArguments]):
    """Calls one tool of one MCP server; `build_tool` makes a subclass per tool."""

    remote_name: ClassVar[str]
    """The tool's name on the server (the model sees `name`, `<server>_<tool>`)."""
    input_schema: ClassVar[dict[str, Any]]
    untrusted_output = True
    reads = frozenset({"mcp"})

    def __init__(self, connection: McpConnection) -> None:
        self._connection = connection

    def schema(self) -> dict[str, Any]:
        """The server's input schema, compacted, as the function's parameters."""
        params = compact_schema({k: v for k, v in self.input_schema.items() if k != "$schema"})
        params.setdefault("type", "object")
        params.setdefault("properties", {})
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    async def run(self, args: McpArguments, ctx: ToolContext) -> str:
        try:
            result = await self._connection.call(self.remote_name, dict(args.model_extra or {}))
        except McpCallError as exc:
            raise ToolError(str(exc)) from None
        text = render(result)
        if result.is_error:
            raise ToolError(truncate(f"{self.name} failed: {text}", MAX_ERROR))
        return text


def build_tool(connection: McpConnection, info: McpToolInfo, *, name: str) -> McpTool:
    """An `McpTool` for the server's tool `info`, exposed to the model as `name`."""
    config = connection.config
    hints = info.annotations
    schema = dict(info.input_schema)
    arguments = type(
        f"McpArguments_{name}",
        (McpArguments,),
        {"input_schema": schema, "validator": _validator(schema)},
    )
    cls = type(
        f"McpTool_{name}",
        (McpTool,),
        {
            "name": name,
            "remote_name": info.name,
            "description": _description(info, config),
            "input_schema": schema,
            "args_model": arguments,
            "risk": config.risk_for(
                info.name,
                read_only=bool(hints and hints.read_only_hint),
                destructive=bool(hints and hints.destructive_hint),
            ),
            "source": f"mcp:{config.name}",
        },
    )
    return cast(type[McpTool], cls)(connection)


def tool_name(server: str, tool: str, *, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """`<server>_<tool>` in `[a-z0-9_]`, at most 64 characters, not in `taken`.

    A name that had to be cut, or that collides after sanitising (`get-item` and `get_item`),
    gets a short hash of the original, so it stays stable from one start to the next.
    """
    original = f"{server}_{tool}"
    name = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", original.lower())).strip("_")
    if len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha256(original.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9].rstrip('_')}_{digest}"
    return name


def _description(info: McpToolInfo, config: McpServerConfig) -> str:
    text = " ".join((info.description or "").split())
    if not text:
        text = f"{info.name} (a tool of the MCP server {config.name})"
    return truncate(text, MAX_DESCRIPTION)


def _validator(schema: dict[str, Any]) -> Any:
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema)
    except (SchemaError, TypeError, ValueError, LookupError):
        return None


def _problems(validator: Any, data: dict[str, Any]) -> str:
    """Up to MAX_PROBLEMS `path: message` lines; empty when the arguments are valid."""
    try:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    except Exception:  # an unresolvable $ref and the like: let the server judge
        return ""
    lines = []
    for error in errors[:MAX_PROBLEMS]:
        path = ".".join(str(p) for p in error.absolute_path)
        lines.append(f"{path}: {error.message}" if path else error.message)
    return "; ".join(lines)
