"""The tool contract: a name, a pydantic argument model, a risk level and an async call.

Built-in tools register through the same `ToolRegistry.register` a plug-in would use; the model
sees `schemas()`, sorted by name so the prompt prefix stays stable for vLLM's prefix cache.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from automation.calendar import CalendarService
from automation.scheduler.reminders import ReminderService
from automation.tools.file_access import FileService
from automation.tools.scopes import DataScopes
from memory.db import Database
from memory.service import MemoryService


class RiskLevel(StrEnum):
    """How much harm a call can do; the policy layer decides what each level requires."""

    READ = "read"
    WRITE = "write"
    IRREVERSIBLE = "irreversible"
    EXTERNAL_SEND = "external-send"
    PAYMENT = "payment"


NETWORK_READS = frozenset({"web", "api"})
"""`Tool.reads` scopes that contact a host named by the call (its `target`)."""
CHOSEN_HOST_READS = frozenset({"web"})
"""Network reads whose host the model's arguments choose (a URL). After untrusted content such
a read could carry data to any host, so the policy asks; an API tool's host is fixed by the
tool file the user installed, so its reads need no question."""


class ToolError(Exception):
    """A tool failed in a way the model should hear about (the text goes back to it)."""


class ProgressBoard(Protocol):
    """One message per request that the plan is posted to and then edited in place.

    Best effort by design: a channel that cannot edit, or a network fault, must not fail the
    task; the final report carries everything the board showed.
    """

    async def show(self, text: str) -> None:
        """Post `text` the first time, replace it afterwards."""


class ToolCatalog(Protocol):
    """The tools of this turn that are not listed to the model (too many to send with every
    request): `tool_search` finds them, and what it found becomes callable for the turn."""

    def search(self, query: str, limit: int) -> list[Tool[Any]]:
        """The best matches for `query` (what the user wants to do), best first."""
        ...

    def activate(self, names: list[str]) -> None:
        """Make `names` callable for the rest of the turn."""
        ...


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a tool may use: the acting user, their time zone, the database, and the clock."""

    user_id: int
    timezone: str
    db: Database
    now: datetime
    source_message_id: int | None = None
    """The inbound message that caused the call, for idempotent writes."""
    call_id: str | None = None
    """The model's id for this tool call: a re-run of the same call after a crash has it too."""
    memory: MemoryService | None = None
    """Long-term memory of the acting user (None when memory is off)."""
    reminders: ReminderService | None = None
    """Reminders and recurring tasks (None when the scheduler is off)."""
    calendar: CalendarService | None = None
    """The acting user's calendars (only the owner has any)."""
    calendar_write: bool = False
    """Whether creating events is allowed (DADANG_CALENDAR_WRITE)."""
    channel: str | None = None
    chat_id: str | None = None
    """The chat the request came from, where reminders are delivered by default."""
    scopes: DataScopes = field(default_factory=DataScopes)
    """What the policy lets the agent read (memory kinds, calendars, sites, API hosts)."""
    tainted: bool = False
    """Untrusted content is already in this turn: network tools must not be redirected to a
    host the policy did not see."""
    progress: ProgressBoard | None = None
    """Where a multi-step task shows its plan to the user (one message, edited in place)."""
    files: FileService | None = None
    """The acting user's stored files, and sending one to the chat the request came from."""
    catalog: ToolCatalog | None = None
    """The turn's deferred tools, for `tool_search` (None: every tool is already listed)."""


ArgsT = TypeVar("ArgsT", bound=BaseModel)


class Tool(abc.ABC, Generic[ArgsT]):
    """A callable capability; subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: type[ArgsT]
    risk: ClassVar[RiskLevel | None] = None
    """None: undeclared, and the policy's `unknown_tool` rule applies (ask by default)."""
    untrusted_output: ClassVar[bool] = False
    """True when results carry third-party text (web pages, emails, invites): after reading it,
    the policy makes every write or send in the turn ask the user first."""
    source: ClassVar[str] = "builtin"
    """Where the tool comes from (`builtin`, `http:<file>`, `openapi:<name>`, `mcp:<server>`)."""
    reads: ClassVar[frozenset[str]] = frozenset()
    """The data scopes a call reads (`memory`, `calendar`, `web`, …), recorded in the audit."""
    on_demand: ClassVar[bool] = False
    """Not listed with every request: a situational tool with a large schema, reached through
    `tool_search` or by calling it by name (its schema is then sent from the next step on)."""
    stays_private: ClassVar[bool] = False
    """Effects reach only the acting user (their own files, their own chat), so untrusted
    content in the turn is no reason to ask: it cannot carry data anywhere through this tool."""

    def target(self, arguments: dict[str, Any]) -> str:
        """What a call acts on (a host, a reminder id), shown in approvals and the audit.

        Best effort on raw arguments: it runs before validation, so it must not raise.
        """
        return ""

    @abc.abstractmethod
    async def run(self, args: ArgsT, ctx: ToolContext) -> str:
        """Do the work; the returned text is what the model reads."""

    def schema(self) -> dict[str, Any]:
        """The OpenAI function schema the model sees."""
        params = compact_schema(self.args_model.model_json_schema())
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        """Validate `arguments` and run; invalid arguments become a ToolError for the model.

        Raises:
            ToolError: the arguments do not match the schema, or the tool reported a failure.
        """
        try:
            args = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from exc
        return await self.run(args, ctx)


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's JSON schema without what only costs prompt tokens.

    Every tool schema is in every prompt, so the model-facing copy keeps types, enums,
    required fields, defaults, number bounds and descriptions, and drops: titles, the model
    docstring, `anyOf [X, null]` for optionals (an absent key already means "not given"),
    `default: null`, and length/count limits (pydantic still enforces them, and a violation
    comes back to the model as an error naming the field). A union of plain scalar types
    becomes one `type` list. Nested models (`$defs`, array items) get the same treatment.
    """
    out = {k: v for k, v in schema.items() if k not in ("title", "description")}
    return _slim(_inline_refs(out))


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`$ref`s to `$defs` replaced by the definition itself, when no definition refers to
    itself (pydantic names every nested model; inline, the name and the indirection are gone)."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict) or any(
        f'"#/$defs/{name}"' in json.dumps(sub) for name, sub in defs.items()
    ):
        return schema

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
                rest = {k: walk(v) for k, v in node.items() if k != "$ref"}
                body = {k: v for k, v in defs[ref[8:]].items() if k not in ("title", "description")}
                return {**walk(body), **rest}
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


_DROPPED: Final = frozenset({"title", "maxItems", "minItems", "maxLength", "minLength"})
_SCALARS: Final = frozenset({"string", "integer", "number", "boolean", "null"})


def _slim(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k not in _DROPPED}
    options = out.get("anyOf")
    if isinstance(options, list):
        non_null = [o for o in options if o != {"type": "null"}]
        if len(non_null) == 1 and isinstance(non_null[0], dict):
            out.pop("anyOf")
            out = {**_slim(non_null[0]), **out}
        elif (
            all(isinstance(o, dict) and set(o) == {"type"} for o in non_null)
            and {o["type"] for o in non_null} <= _SCALARS
        ):
            out.pop("anyOf")
            kinds = [o["type"] for o in non_null]
            if "integer" in kinds and "number" in kinds:
                kinds.remove("integer")  # every integer is a number
            out["type"] = kinds
        else:
            out["anyOf"] = [_slim(o) if isinstance(o, dict) else o for o in options]
    if "default" in out and (
        out["default"] is None or out["default"] is False or out["default"] == ""
    ):
        out.pop("default")  # what an absent key means anyway
    properties = out.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {
            name: _slim(prop) if isinstance(prop, dict) else prop
            for name, prop in properties.items()
        }
    items = out.get("items")
    if isinstance(items, dict):
        out["items"] = _slim(items)
    defs = out.get("$defs")
    if isinstance(defs, dict):
        out["$defs"] = {
            name: _slim({k: v for k, v in sub.items() if k != "description"})
            for name, sub in defs.items()
        }
    return out


_SCHEMA_LISTS = 64
"""Distinct per-user tool lists kept built (users mostly share a handful of them)."""


class ToolRegistry:
    """The tools available to the agent."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self._schemas: dict[frozenset[str] | None, list[dict[str, Any]]] = {}
        self.problems: list[str] = []
        """Tool sources that failed to load (a broken YAML file, an MCP server that is down),
        one line each saying what to fix; the other tools still work."""

    def register(self, tool: Tool[Any]) -> None:
        """Add a tool; a second tool with the same name is a programming error."""
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = {}

    def get(self, name: str) -> Tool[Any] | None:
        """The tool called `name`, if any."""
        return self._tools.get(name)

    def names(self) -> list[str]:
        """Registered tool names, sorted."""
        return sorted(self._tools)

    def schemas(self, only: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Function schemas sorted by name (a stable prompt prefix), of every tool or of those
        in `only` (what one user may use); each distinct list is built once, not per turn."""
        cached = self._schemas.get(only)
        if cached is None:
            names = [n for n in self.names() if only is None or n in only]
            cached = [self._tools[name].schema() for name in names]
            if len(self._schemas) >= _SCHEMA_LISTS:
                self._schemas.clear()
            self._schemas[only] = cached
        return cached
