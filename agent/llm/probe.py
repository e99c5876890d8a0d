"""Is this endpoint fit to run Dadang? Model served, context, tool calling, latency, reasoning.

Each verdict names the `vllm serve` flag or the `DADANG_*` setting that fixes it, because the
failures of a misconfigured vLLM are quiet: without `--enable-auto-tool-choice` every turn with
tools gets a 400, with the wrong `--tool-call-parser` the tool call arrives as `<tool_call>` text,
without `--reasoning-parser` the thinking arrives inside the reply. `dadang doctor` prints the
findings; `/healthz` can reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agent.llm.probe_http import START_VLLM, Endpoint, EndpointError, Sample

Status = Literal["ok", "warn", "fail"]

USEFUL_CONTEXT = 16384
"""Below this, memories, tool schemas and history crowd each other out of the prompt."""
SLOW_FIRST_TOKEN = 5.0
"""Seconds to a first token past which a chat feels broken."""
FIX_TOOLS = "start vLLM with --enable-auto-tool-choice --tool-call-parser hermes"
FIX_CONTEXT = "start vLLM with --max-model-len 32768"

_PING_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer a ping. Always call this tool when asked to ping.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    },
}


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One verdict about the endpoint; `fix` says what to change when it is not ok."""

    check: str
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    """Measured facts for machines (model id, context length, latencies)."""


async def probe_endpoint(
    *,
    base_url: str,
    model: str | None = None,
    api_key: str | None = None,
    request_timeout: float = 60.0,
    connect_timeout: float = 5.0,
    needed_context: int = 0,
    stream_tools: bool = False,
) -> list[Finding]:
    """Ask the endpoint what Dadang will ask of it; one finding per check, in order.

    `needed_context` is the most Dadang sends and asks for in one request (prompt budget, tool
    schemas and answer); `stream_tools` probes tool calls the way Dadang will make them
    (`DADANG_LLM_STREAM`); `request_timeout` bounds each request. Once the server stops
    answering, the remaining checks are skipped. Never raises for endpoint failures.
    """
    endpoint = Endpoint(
        base_url=base_url, api_key=api_key, timeout=request_timeout, connect_timeout=connect_timeout
    )
    try:
        try:
            cards = await endpoint.cards()
        except EndpointError as exc:
            return [Finding(check="llm", status="fail", detail=exc.detail, fix=exc.fix)]
        served = _served(endpoint.base_url, cards, model)
        findings = [served]
        if served.status == "fail":
            return findings
        findings.append(_context(served.data.get("max_model_len"), needed_context))
        name = str(served.data["model"])
        # Tools first: the short completion then runs on a warm connection, so its latency is
        # the model's and not the TCP handshake's.
        probes = (("tool calling", _tool_calling), ("latency", _latency), ("reasoning", _reasoning))
        for check, probe in probes:
            try:
                findings.append(await probe(endpoint, name, stream_tools))
            except EndpointError as exc:
                findings.append(Finding(check=check, status="fail", detail=exc.detail, fix=exc.fix))
                if exc.status is None:
                    break  # no answer at all: the next probes would only wait as long again
        return findings
    finally:
        await endpoint.aclose()


def _served(base_url: str, cards: list[dict[str, Any]], model: str | None) -> Finding:
    ids = [str(c.get("id")) for c in cards]
    if not ids:
        return Finding(
            check="llm", status="fail", detail=f"{base_url} serves no model", fix=START_VLLM
        )
    wanted = model or ids[0]
    card = next((c for c in cards if str(c.get("id")) == wanted), None)
    if card is None:
        return Finding(
            check="llm",
            status="fail",
            detail=f"{base_url} does not serve {wanted!r} (it lists {', '.join(ids)})",
            fix=f"set DADANG_LLM_MODEL to one of them, or start vLLM with "
            f"--served-model-name {wanted}",
        )
    root = card.get("root")
    length = card.get("max_model_len")
    data = {
        "model": wanted,
        "root": root,
        "max_model_len": length if isinstance(length, int) else None,
        "listed": ids,
    }
    shown = f" ({root})" if root and root != wanted else ""
    return Finding(check="llm", status="ok", detail=f"{base_url} serves {wanted}{shown}", data=data)


def _context(length: int | None, needed: int) -> Finding:
    data = {"max_model_len": length, "needed": needed}
    why = (
        f"Dadang's requests need up to {needed} tokens (DADANG_PROMPT_BUDGET_TOKENS + "
        "DADANG_TOOLS_PROMPT_BUDGET + DADANG_LLM_MAX_TOKENS)"
    )
    if length is None:
        return Finding(
            check="context",
            status="warn",
            detail=f"the server does not report max_model_len (not vLLM?); {why}",
            fix="make sure the model's context window is at least "
            f"{max(needed, USEFUL_CONTEXT)} tokens",
            data=data,
        )
    if length < needed:
        return Finding(
            check="context",
            status="fail",
            detail=f"max_model_len {length} is too short: {why}; longer requests get HTTP 400",
            fix=f"{FIX_CONTEXT} (or lower DADANG_PROMPT_BUDGET_TOKENS)",
            data=data,
        )
    if length < USEFUL_CONTEXT:
        return Finding(
            check="context",
            status="warn",
            detail=f"max_model_len {length}: Dadang's prompts (memories, tool schemas, history) "
            f"need {USEFUL_CONTEXT} or more to work well",
            fix=FIX_CONTEXT,
            data=data,
        )
    return Finding(
        check="context",
        status="ok",
        detail=f"max_model_len {length} (Dadang needs up to {needed})",
        data=data,
    )


async def _tool_calling(endpoint: Endpoint, model: str, stream_tools: bool) -> Finding:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Call the ping tool with word 'pong'."}],
        "tools": [_PING_TOOL],
        "tool_choice": "auto",
        "chat_template_kwargs": {"enable_thinking": False},
        "max_tokens": 200,
        "temperature": 0.0,
    }
    try:
        sample = await endpoint.sample(body, stream=stream_tools)
    except EndpointError as exc:
        if exc.status == 400 and "enable-auto-tool-choice" in exc.message:
            return Finding(
                check="tool calling",
                status="fail",
                detail=f'vLLM refused tool_choice "auto": {exc.message}',
                fix=FIX_TOOLS,
            )
        raise
    calls = [(name, args) for name, args in sample.calls.values()]
    if any(name == "ping" for name, _ in calls):
        return Finding(
            check="tool calling",
            status="ok",
            detail="the model called the probe tool",
            data={"calls": calls},
        )
    if calls:
        return Finding(
            check="tool calling",
            status="warn",
            detail=f"the model called {calls[0][0]!r} instead of the probe tool 'ping'",
            fix="serve a model that follows tool instructions (Qwen3)",
            data={"calls": calls},
        )
    if "<tool_call>" in sample.content:
        return Finding(
            check="tool calling",
            status="fail",
            detail="the tool call came back as <tool_call> text in the content: vLLM has no "
            "tool-call parser for this model, or the wrong one",
            fix=FIX_TOOLS,
            data={"content": sample.content[:300]},
        )
    return Finding(
        check="tool calling",
        status="fail",
        detail=f"no tool call came back, only text: {sample.content[:80]!r}",
        fix=f"{FIX_TOOLS}, and serve a model that can call tools (Qwen3)",
        data={"content": sample.content[:300]},
    )


async def _latency(endpoint: Endpoint, model: str, stream_tools: bool) -> Finding:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Reply with one word: ready"}],
        "chat_template_kwargs": {"enable_thinking": False},
        "max_tokens": 16,
        "temperature": 0.0,
    }
    sample = await endpoint.sample(body, stream=True)  # always: time to first token needs it
    data = {"first_token_s": _round(sample.first_token), "total_s": _round(sample.total)}
    if not (sample.content.strip() or sample.reasoning):
        return Finding(
            check="latency",
            status="fail",
            detail=f"a short completion returned no text (finish_reason {sample.finish_reason})",
            fix="check vLLM's log for errors while generating",
            data=data,
        )
    first = sample.first_token if sample.first_token is not None else sample.total
    detail = f"first token {first:.2f} s, short answer complete in {sample.total:.2f} s (streamed)"
    if first > SLOW_FIRST_TOKEN:
        return Finding(
            check="latency",
            status="warn",
            detail=f"slow: {detail}",
            fix="the GPU is busy or too small for this model: check "
            "vllm:num_requests_running on vLLM's /metrics, or serve a smaller model",
            data=data,
        )
    return Finding(check="latency", status="ok", detail=detail, data=data)


async def _reasoning(endpoint: Endpoint, model: str, stream_tools: bool) -> Finding:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "What is 17 + 25? Answer with the number."}],
        "chat_template_kwargs": {"enable_thinking": True},
        "max_tokens": 256,
    }
    # Streamed, and cut at the first sign of thinking: a thinking model may go on for minutes.
    sample = await endpoint.sample(body, stream=True, enough=_thought_seen)
    if sample.reasoning:
        field_name = sample.reasoning_field or "reasoning"
        older = " (an older vLLM; Dadang reads it too)" if field_name != "reasoning" else ""
        return Finding(
            check="reasoning",
            status="ok",
            detail=f"separated: thinking arrives in `{field_name}`{older}",
            data={"separated": True, "field": field_name},
        )
    if "<think>" in sample.content or "</think>" in sample.content:
        return Finding(
            check="reasoning",
            status="warn",
            detail="the model thinks, but <think>…</think> stays in the content (Dadang strips "
            "it, but cannot tell thinking from answer until </think> arrives)",
            fix="add --reasoning-parser qwen3 to vllm serve",
            data={"separated": False},
        )
    return Finding(
        check="reasoning",
        status="ok",
        detail="model does not think (fine): no reasoning with enable_thinking=true",
        data={"separated": None},
    )


def _thought_seen(sample: Sample) -> bool:
    return bool(sample.reasoning) or "think>" in sample.content


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
