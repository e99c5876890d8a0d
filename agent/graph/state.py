"""What flows through a turn, and the dependencies its nodes receive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from agent.llm import LLMClient
from agent.policy.engine import PolicyEngine
from agent.policy.limits import RateLimiter
from automation.calendar import CalendarService
from automation.scheduler.reminders import ReminderService
from automation.tools import ToolRegistry
from automation.tools.base import ProgressBoard
from automation.tools.file_access import FileAccess
from automation.tools.scopes import DataScopes
from memory.approvals import ApprovalStore
from memory.audit import AuditLog
from memory.conversations import ConversationStore
from memory.db import Database
from memory.service import MemoryService
from memory.tool_access import ToolAccess


class TurnState(TypedDict, total=False):
    """One turn's state; every field is overwritten by the next turn's input.

    The conversation history lives in the database (the source of truth), not in this state, so
    a turn restarted after a crash begins from the same history and never sees itself twice.
    """

    inbound_id: int
    user_id: int
    conversation_id: int
    channel: str
    chat_id: str
    user_name: str
    timezone: str
    text: str
    messages: list[dict[str, Any]]
    steps: int
    pending_calls: bool
    reply: str
    prompt_tokens: int
    completion_tokens: int
    model_calls: int
    memory_ids: list[int]
    tainted: bool
    """Untrusted content (a web page, an invite) entered this turn: writes must ask."""
    verdicts: dict[str, dict[str, Any]]
    """The policy's verdict per tool call id of the pending assistant message."""
    tools: list[str]
    """The tools listed to the model this turn (enabled for this user, not denied by the
    policy), plus deferred ones once `tool_search` found them."""
    deferred: list[str]
    """Tools this user may use but that are not listed (too many for the prompt): the model
    finds them with `tool_search`; calling one before that is refused."""
    active_seconds: float
    """Model and tool time spent on this request so far (the time budget's clock)."""


@dataclass(frozen=True, kw_only=True)
class TurnDeps:
    """Built once at start and passed to every node (LangGraph runtime context)."""

    llm: LLMClient
    tools: ToolRegistry
    db: Database
    conversations: ConversationStore
    history_messages: int = 20
    max_tool_steps: int = 12
    turn_time_budget: float = 300.0
    """Seconds of model and tool time per request (approval waits excluded)."""
    tool_timeout: float = 120.0
    progress: Callable[[str, str, int], ProgressBoard | None] | None = None
    """`(channel, chat_id, inbound id) -> board` where a task's plan is shown and edited."""
    thinking: bool = False
    stream: bool = True
    max_tokens: int = 2048
    temperature: float = 0.7
    memory: MemoryService | None = None
    recall_limit: int = 8
    prompt_budget: int = 6000
    tools_prompt_budget: int = 3000
    """Estimated tokens the HTTP/OpenAPI/MCP tool schemas may add to each request; past it
    they are found through `tool_search` (0: never defer)."""
    reminders: ReminderService | None = None
    calendar: CalendarService | None = None
    calendar_user: int | None = None
    """Whose calendar `calendar` is (the owner's); nobody else's turns see it."""
    calendar_write: bool = False
    audit: AuditLog | None = None
    """Where every tool call, data read and model call is recorded."""
    policy: PolicyEngine | None = None
    """Decides every tool call (None only in tests of the bare graph)."""
    approvals: ApprovalStore | None = None
    tool_limit: RateLimiter | None = None
    """Tool calls per user per hour."""
    scopes: DataScopes = field(default_factory=DataScopes)
    files: FileAccess | None = None
    """Users' stored files, for the file tools (None: file tools report storage is off)."""
    tool_access: ToolAccess | None = None
    """Per-user tool switches (None: every tool the policy does not deny, for everyone)."""
    owner_id: int | None = None
    log_prompts: bool = False
    """Store full prompts in the audit trail (policy.yaml audit.log_prompts)."""
