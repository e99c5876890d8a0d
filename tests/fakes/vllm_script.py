"""Scripted replies for ``FakeVLLM``: what the fake model "says" to one request.

Why a small vocabulary instead of raw JSON: tests should state intent ("answer this text",
"call these tools", "fail with 429", "hang"), and the fake turns it into vLLM's exact wire
format for both streaming and non-streaming requests.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "JSON",
    "Reply",
    "Responder",
    "content_text",
    "echo",
    "error",
    "hang",
    "raw_content",
    "text",
    "tool_calls",
    "use_offered_tool",
]

JSON = dict[str, Any]
Responder = Callable[[JSON], "Reply | Awaitable[Reply]"]
"""``FakeVLLM.default``: called with the request body when no scripted reply is queued."""


@dataclass
class Reply:
    """One scripted answer; build it with the functions below rather than by hand."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    """(function name, arguments exactly as sent) pairs."""
    finish_reason: Literal["stop", "length", "tool_calls"] = "stop"
    status: int = 200
    error_message: str = ""
    error_type: str | None = None
    legacy_error: bool = False
    retry_after: float | None = None
    latency: float | None = None
    """Seconds to hold the request before answering; None means the server's latency."""
    chunk_delay: float = 0.0
    """Seconds between SSE chunks (to exercise stream read timeouts)."""
    usage: dict[str, int] | None = None
    """Override the estimated token counts."""


def text(
    content: str, *, reasoning: str | None = None, finish_reason: Literal["stop", "length"] = "stop"
) -> Reply:
    """Plain assistant text, optionally with separated reasoning (as the qwen3 parser does)."""
    return Reply(content=content, reasoning=reasoning, finish_reason=finish_reason)


def raw_content(content: str) -> Reply:
    """Content returned verbatim, e.g. a malformed ``<tool_call>`` or an unparsed ``<think>``.

    This is what vLLM does when the hermes parser cannot parse the model's tool call, or
    when no reasoning parser is configured: the text stays in ``content``.
    """
    return Reply(content=content)


def tool_calls(
    calls: list[tuple[str, dict[str, Any] | str]],
    *,
    content: str | None = None,
    reasoning: str | None = None,
) -> Reply:
    """Tool calls (auto tool choice → finish_reason "tool_calls").

    A dict of arguments is serialised with ``json.dumps``; a str is sent verbatim, so a
    test can send malformed JSON.
    """
    encoded = [
        (name, args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))
        for name, args in calls
    ]
    return Reply(
        content=content, reasoning=reasoning, tool_calls=encoded, finish_reason="tool_calls"
    )


def error(
    status: int,
    message: str = "fake vLLM error",
    *,
    retry_after: float | None = None,
    legacy: bool = False,
    type: str | None = None,
) -> Reply:
    """An HTTP error with vLLM's body (``legacy``: older vLLM's ``{"object": "error"}``)."""
    return Reply(
        status=status,
        error_message=message,
        retry_after=retry_after,
        legacy_error=legacy,
        error_type=type,
    )


def hang(seconds: float, then: Reply | None = None) -> Reply:
    """Hold the request ``seconds`` (past any sane client timeout), then answer ``then``."""
    return replace(then or text(""), latency=seconds)


def echo(body: JSON) -> Reply:
    """Default responder: echo the last user message, so tests see their input came through."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return text("echo: " + content_text(message.get("content")))
    return text("echo: ")


def use_offered_tool(body: JSON) -> Reply:
    """A cooperative model: call the named (or first) offered tool, else echo.

    Arguments are placeholders of each required property's JSON type, so the call is valid
    against the tool's schema; enough for code that checks that tool calling works at all.
    """
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return echo(body)
    chosen = tools[0]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        chosen = next((t for t in tools if t.get("function", {}).get("name") == wanted), chosen)
    function = chosen.get("function") or {}
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    arguments = {
        name: _PLACEHOLDERS.get(str((properties.get(name) or {}).get("type")), "test")
        for name in schema.get("required") or []
    }
    return tool_calls([(str(function.get("name", "")), arguments)])


_PLACEHOLDERS: dict[str, Any] = {
    "string": "test",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "array": [],
    "object": {},
}


def content_text(content: Any) -> str:
    """The text of an OpenAI message ``content`` (a string or a list of parts)."""
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)
