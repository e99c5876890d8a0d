"""The graph's nodes; each reads `TurnDeps` from the LangGraph runtime context."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from langgraph.runtime import Runtime

from agent.graph.prompts import system_prompt, turn_context
from agent.graph.state import TurnDeps, TurnState
from agent.llm import Completion
from agent.llm.repair import parse_arguments
from automation.tools import ToolContext, ToolError

log = logging.getLogger(__name__)

_TOOL_RESULT_LIMIT = 8000


async def recall(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Assemble the prompt: stable system prompt, then history, then the new message."""
    deps = runtime.context
    history = await deps.conversations.history(
        state["conversation_id"], before_id=state["inbound_id"], limit=deps.history_messages
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(name=state["user_name"])}
    ]
    messages += [{"role": h.role, "content": h.text} for h in history]
    messages.append(
        {
            "role": "system",
            "content": turn_context(now=datetime.now(UTC), timezone=state["timezone"]),
        }
    )
    messages.append({"role": "user", "content": state["text"]})
    return {
        "messages": messages,
        "steps": 0,
        "pending_calls": False,
        "reply": "",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "model_calls": 0,
    }


async def think(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Call the model with the tool schemas (none once the step budget is spent)."""
    deps = runtime.context
    out_of_steps = state.get("steps", 0) >= deps.max_tool_steps
    completion = await deps.llm.chat(
        state["messages"],
        tools=None if out_of_steps else deps.tools.schemas(),
        thinking=deps.thinking,
        stream=deps.stream,
        max_tokens=deps.max_tokens,
        temperature=deps.temperature,
    )
    update = _usage(state, completion)
    if completion.tool_calls and not out_of_steps:
        assistant = {
            "role": "assistant",
            "content": completion.content or "",
            "tool_calls": [c.as_message_part() for c in completion.tool_calls],
        }
        update["messages"] = [*state["messages"], assistant]
        update["pending_calls"] = True
        return update
    update["reply"] = completion.content
    update["pending_calls"] = False
    return update


def _usage(state: TurnState, completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": state.get("prompt_tokens", 0) + completion.prompt_tokens,
        "completion_tokens": state.get("completion_tokens", 0) + completion.completion_tokens,
        "model_calls": state.get("model_calls", 0) + completion.calls,
    }


async def act(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Run the tool calls of the last assistant message; results go back to the model."""
    deps = runtime.context
    last = state["messages"][-1]
    ctx = ToolContext(
        user_id=state["user_id"],
        timezone=state["timezone"],
        db=deps.db,
        now=datetime.now(UTC),
        source_message_id=state["inbound_id"],
    )
    results: list[dict[str, Any]] = []
    for call in last.get("tool_calls", []):
        fn = call["function"]
        results.append(
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "content": await _run_tool(deps, fn["name"], fn["arguments"], ctx),
            }
        )
    return {
        "messages": [*state["messages"], *results],
        "steps": state.get("steps", 0) + 1,
        "pending_calls": False,
    }


async def _run_tool(deps: TurnDeps, name: str, raw_arguments: str, ctx: ToolContext) -> str:
    tool = deps.tools.get(name)
    if tool is None:
        return (
            f"Error: there is no tool named {name!r}. Available: {', '.join(deps.tools.names())}."
        )
    try:
        arguments = json.loads(raw_arguments) if raw_arguments.strip() else {}
    except json.JSONDecodeError:
        arguments, error = parse_arguments(raw_arguments)
        if arguments is None:
            return f"Error: {error}. Call the tool again with a valid JSON object."
    if not isinstance(arguments, dict):
        return "Error: arguments must be a JSON object."
    try:
        result = await tool.call(arguments, ctx)
    except ToolError as exc:
        return f"Error: {exc}"
    except Exception as exc:  # a broken tool must not end the turn; the model explains it
        log.exception("tool %s failed", name)
        return f"Error: the tool {name} failed ({type(exc).__name__})."
    return result[:_TOOL_RESULT_LIMIT]


def respond(state: TurnState) -> dict[str, Any]:
    """Settle the final reply text."""
    reply = (state.get("reply") or "").strip()
    if not reply:
        reply = "…" if state.get("steps") else "(no answer — please try rephrasing)"
    return {"reply": reply}


def route_after_think(state: TurnState) -> str:
    """Tools requested → act; otherwise respond."""
    return "act" if state.get("pending_calls") else "respond"
