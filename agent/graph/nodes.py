"""The graph's nodes; each reads `TurnDeps` from the LangGraph runtime context."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from langgraph.runtime import Runtime

from agent.graph.calendar_context import calendar_block
from agent.graph.context import assemble
from agent.graph.state import TurnDeps, TurnState
from agent.graph.toolset import activated, catalog, schema_tokens, turn_tools, visible
from agent.graph.untrusted import redact, wrap
from agent.llm import Completion
from agent.llm.repair import parse_arguments
from agent.policy.rules import Decision
from automation.tools import Tool, ToolContext, ToolError
from memory.memories import MemoryRecord
from memory.recall import Hit

log = logging.getLogger(__name__)

_TOOL_RESULT_LIMIT = 8000


async def recall(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Assemble the prompt: instructions and profile, summary, recent turns, memories, message."""
    deps = runtime.context
    now = datetime.now(UTC)
    summary, upto = await deps.conversations.summary(state["conversation_id"])
    history = await deps.conversations.history(
        state["conversation_id"],
        before_id=state["inbound_id"],
        limit=deps.history_messages,
        after_id=upto,
    )
    toolset = await turn_tools(deps, state["user_id"])
    tools = toolset.tools
    profile: list[MemoryRecord] = []
    hits: list[Hit] = []
    if deps.memory is not None:
        profile = await deps.memory.store.profile(state["user_id"])
        hits = await deps.memory.search(
            state["user_id"], state["text"], limit=deps.recall_limit, now=now
        )
        profile_ids = {m.id for m in profile}
        hits = [h for h in hits if h.memory.id not in profile_ids]
        allowed = deps.scopes.allows_memory_kind
        profile = [m for m in profile if allowed(m.kind)]
        hits = [h for h in hits if allowed(h.memory.kind)]
    extra, tainted = "", False
    if deps.calendar is not None and state["user_id"] == deps.calendar_user:
        extra, tainted = await calendar_block(
            deps.calendar,
            state["text"],
            now=now,
            tz=ZoneInfo(state["timezone"]),
            scopes=deps.scopes,
        )
    if deps.audit is not None and (profile or hits or extra):
        await deps.audit.append(
            actor="agent",
            action="data_read",
            user_id=state["user_id"],
            target="memory" + (",calendar" if extra else ""),
            detail={
                "message_id": state["inbound_id"],
                "memory_ids": [m.id for m in profile] + [h.memory.id for h in hits],
                "calendar": bool(extra),
            },
        )
    messages = assemble(
        name=state["user_name"],
        timezone=state["timezone"],
        now=now,
        profile=profile,
        summary=summary,
        history=history,
        hits=hits,
        text=state["text"],
        budget=deps.prompt_budget,
        tools_tokens=schema_tokens(deps.tools, frozenset(tools)),
        extra=extra,
    )
    return {
        "messages": messages,
        "steps": 0,
        "pending_calls": False,
        "reply": "",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "model_calls": 0,
        "memory_ids": [h.memory.id for h in hits],
        "tainted": tainted,
        "verdicts": {},
        "active_seconds": 0.0,
        "tools": tools,
        "deferred": toolset.deferred,
    }


async def think(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Call the model with the tool schemas; once the step or time budget is spent, without
    them and with a note asking for a report of what was done and what is left."""
    deps = runtime.context
    stop = _stop_note(state, deps)
    out_of_steps = stop is not None
    started = time.perf_counter()
    completion = await deps.llm.chat(
        state["messages"] if stop is None else [*state["messages"], stop],
        tools=None if out_of_steps else deps.tools.schemas(visible(state)),
        thinking=deps.thinking,
        stream=deps.stream,
        max_tokens=deps.max_tokens,
        temperature=deps.temperature,
    )
    update = _usage(state, completion)
    update["active_seconds"] = state.get("active_seconds", 0.0) + time.perf_counter() - started
    if deps.audit is not None:
        detail: dict[str, Any] = {
            "message_id": state["inbound_id"],
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_ms": round((time.perf_counter() - started) * 1000),
            "requests": completion.calls,
            "tool_calls": [c.name for c in completion.tool_calls],
            "finish_reason": completion.finish_reason,
        }
        if deps.log_prompts:
            detail["prompt"] = state["messages"]
            detail["reply"] = completion.content
        await deps.audit.append(
            actor="agent",
            action="model_call",
            user_id=state["user_id"],
            target=completion.model,
            detail=detail,
        )
    # A secret value the model somehow wrote (echoed from a page, guessed, planted) is masked
    # before it can reach a tool, the audit trail, the checkpoint, the chat or the next prompt.
    if completion.tool_calls and not out_of_steps:
        calls = [c.as_message_part() for c in completion.tool_calls]
        for part in calls:
            part["function"]["arguments"] = redact(part["function"]["arguments"])
        assistant = {
            "role": "assistant",
            "content": redact(completion.content or ""),
            "tool_calls": calls,
        }
        update["messages"] = [*state["messages"], assistant]
        update["pending_calls"] = True
        return update
    update["reply"] = redact(completion.content)
    update["pending_calls"] = False
    return update


def _stop_note(state: TurnState, deps: TurnDeps) -> dict[str, Any] | None:
    """The runtime's instruction to wrap up, when the request has used up its budget."""
    if state.get("steps", 0) >= deps.max_tool_steps:
        why = f"the limit of {deps.max_tool_steps} tool rounds for one request is reached"
    elif state.get("active_seconds", 0.0) >= deps.turn_time_budget:
        why = f"the time budget of {deps.turn_time_budget:.0f} s for one request is spent"
    else:
        return None
    return {
        "role": "system",
        "content": (
            f"Stop here: {why}. Do not call tools. Report to the user what was done (with the "
            "ids and links from the tool results), what was not done, and how to go on."
        ),
    }


def _usage(state: TurnState, completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": state.get("prompt_tokens", 0) + completion.prompt_tokens,
        "completion_tokens": state.get("completion_tokens", 0) + completion.completion_tokens,
        "model_calls": state.get("model_calls", 0) + completion.calls,
    }


async def act(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Run the calls `gate` allowed; every result goes back to the model as labelled data."""
    deps = runtime.context
    started = time.perf_counter()
    last = state["messages"][-1]
    channel, chat_id = state.get("channel"), state.get("chat_id")
    board = (
        deps.progress(channel, chat_id, state["inbound_id"])
        if deps.progress is not None and channel and chat_id
        else None
    )
    found = catalog(deps, state)
    ctx = ToolContext(
        user_id=state["user_id"],
        timezone=state["timezone"],
        db=deps.db,
        now=datetime.now(UTC),
        source_message_id=state["inbound_id"],
        memory=deps.memory,
        reminders=deps.reminders,
        calendar=deps.calendar if state["user_id"] == deps.calendar_user else None,
        calendar_write=deps.calendar_write,
        channel=state.get("channel"),
        chat_id=state.get("chat_id"),
        scopes=deps.scopes,
        tainted=bool(state.get("tainted")),
        progress=board,
        files=deps.files.for_user(
            state["user_id"],
            channel=state.get("channel"),
            chat_id=state.get("chat_id"),
            source_message_id=state["inbound_id"],
        )
        if deps.files is not None
        else None,
        catalog=found,
    )
    verdicts = state.get("verdicts") or {}
    tainted = bool(state.get("tainted"))
    results: list[dict[str, Any]] = []
    for call in last.get("tool_calls", []):
        fn = call["function"]
        tool = deps.tools.get(fn["name"])
        verdict = verdicts.get(call["id"])
        if deps.policy is not None and tool is not None and verdict is None:
            # A checkpoint from before the gate existed, or a gate bug: never run unchecked.
            verdict = {"decision": "deny", "rule": "none", "reason": "no policy decision"}
        call_ctx = dataclasses.replace(ctx, call_id=call["id"])
        content, ran = await _checked_call(deps, state, fn, tool, verdict, call_ctx)
        if found is not None:
            found.activate([fn["name"]])  # a deferred tool called by name: list it from now on
        untrusted = bool(tool is not None and tool.untrusted_output and ran)
        tainted = tainted or untrusted
        results.append(
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "content": wrap(fn["name"], content, untrusted=untrusted),
            }
        )
        if deps.audit is not None:
            await deps.audit.append(
                actor="agent",
                action="tool_call",
                user_id=state["user_id"],
                target=fn["name"],
                detail={
                    "message_id": state["inbound_id"],
                    "risk": tool.risk.value if tool and tool.risk else "unknown",
                    "reads": sorted(tool.reads) if tool else [],
                    "arguments": fn["arguments"][:2000],
                    "decision": (verdict or {}).get("decision", "allow"),
                    "rule": (verdict or {}).get("rule", ""),
                    "ran": ran,
                    "ok": ran and not content.startswith("Error:"),
                    "untrusted_output": untrusted,
                },
            )
    return {
        "messages": [*state["messages"], *results],
        "steps": state.get("steps", 0) + 1,
        "pending_calls": False,
        "tainted": tainted,
        "verdicts": {},
        "active_seconds": state.get("active_seconds", 0.0) + time.perf_counter() - started,
        **activated(state, found),  # what tool_search found is listed from the next step on
    }


async def _checked_call(
    deps: TurnDeps,
    state: TurnState,
    fn: dict[str, Any],
    tool: Tool[Any] | None,
    verdict: dict[str, Any] | None,
    ctx: ToolContext,
) -> tuple[str, bool]:
    """The result text, and whether the tool actually ran."""
    if verdict is not None and verdict["decision"] != Decision.ALLOW:
        return f"Error: not done — {verdict['reason']}.", False
    if tool is not None and deps.tool_limit is not None:
        limited = deps.tool_limit.hit(state["user_id"])
        if limited is not None:
            minutes = max(1, round(limited.retry_after / 60))
            return (
                f"Error: not done — the user's limit of {limited.limit} tool calls per hour "
                f"is reached (next one in about {minutes} min). Tell the user.",
                False,
            )
    if tool is None:
        # The names this user may call now, not every registered one (it may be hundreds).
        names = state.get("tools") or deps.tools.names()
        listed = ", ".join(names)
        return f"Error: there is no tool named {fn['name']!r}. Available: {listed}.", False
    content = await _run_tool(deps, fn["name"], fn["arguments"], ctx)
    return content, True


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
        async with asyncio.timeout(deps.tool_timeout):
            result = await tool.call(arguments, ctx)
    except ToolError as exc:
        return f"Error: {exc}"
    except TimeoutError:
        return (
            f"Error: {name} did not finish within {deps.tool_timeout:.0f} s and was stopped; "
            "its effect is unknown — check before retrying a write."
        )
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
