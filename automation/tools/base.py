"""The tool contract: a name, a pydantic argument model, a risk level and an async call.

Built-in tools register through the same `ToolRegistry.register` a plug-in would use; the model
sees `schemas()`, sorted by name so the prompt prefix stays stable for vLLM's prefix cache.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from automation.calendar import CalendarService
from automation.scheduler.reminders import ReminderService
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


class ToolError(Exception):
    """A tool failed in a way the model should hear about (the text goes back to it)."""


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a tool may use: the acting user, their time zone, the database, and the clock."""

    user_id: int
    timezone: str
    db: Database
    now: datetime
    source_message_id: int | None = None
    """The inbound message that caused the call, for idempotent writes."""
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

    Titles, the model docstring, `anyOf [X, null]` for optionals (an absent key already means
    "not given") and `default: null` are dropped; every tool schema is in every prompt.
    """
    out = {k: v for k, v in schema.items() if k not in ("title", "description")}
    properties = out.get("properties")
    if isinstance(properties, dict):
        compacted: dict[str, Any] = {}
        for name, prop in properties.items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            options = prop.get("anyOf")
            if isinstance(options, list):
                non_null = [o for o in options if o != {"type": "null"}]
                if len(non_null) == 1:
                    prop.pop("anyOf")
                    prop = {**non_null[0], **prop}
            if prop.get("default", 0) is None:
                prop.pop("default")
            compacted[name] = prop
        out["properties"] = compacted
    return out


class ToolRegistry:
    """The tools available to the agent."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self._schemas: list[dict[str, Any]] | None = None

    def register(self, tool: Tool[Any]) -> None:
        """Add a tool; a second tool with the same name is a programming error."""
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = None

    def get(self, name: str) -> Tool[Any] | None:
        """The tool called `name`, if any."""
        return self._tools.get(name)

    def names(self) -> list[str]:
        """Registered tool names, sorted."""
        return sorted(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """Function schemas sorted by name (a stable prompt prefix); built once, not per turn."""
        if self._schemas is None:
            self._schemas = [self._tools[name].schema() for name in self.names()]
        return self._schemas
