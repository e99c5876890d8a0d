"""Values the model client returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]
"""An OpenAI chat message (`role`, `content`, `tool_calls`, `tool_call_id`)."""


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """One function call the model asked for; `arguments` is None when they were unusable."""

    id: str
    name: str
    raw_arguments: str
    arguments: dict[str, Any] | None
    error: str | None = None
    """Why the arguments could not be parsed, shown to the model on its next step."""

    def as_message_part(self) -> dict[str, Any]:
        """The call as it goes back into the conversation (`assistant.tool_calls[i]`)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.raw_arguments},
        }


@dataclass(frozen=True, kw_only=True)
class Completion:
    """A model answer with reasoning kept apart from the reply."""

    content: str
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    latency: float = 0.0
    """Seconds from request to the complete answer, retries included."""
    calls: int = 1
    """HTTP requests it took (retries and one re-ask for a broken tool call count)."""
