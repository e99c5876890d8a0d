"""Cleaning what Qwen3 sends: `<think>` blocks, hermes `<tool_call>` text, sloppy JSON.

vLLM's hermes parser hands back a malformed `<tool_call>` as plain content, and a thinking model
without a reasoning parser leaves `<think>…</think>` in the content; neither may reach the user.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def strip_think(content: str) -> tuple[str, str | None]:
    """Split `content` into (reply, reasoning) by removing `<think>` blocks.

    Handles a closed block anywhere, an unclosed `<think>` (all of it is reasoning), and a lone
    `</think>` (the chat template opened the block in the prompt).
    """
    reasoning: list[str] = []

    def keep(match: re.Match[str]) -> str:
        reasoning.append(match.group(0)[7:-8].strip())
        return ""

    text = _THINK_BLOCK.sub(keep, content)
    if "</think>" in text:
        head, _, text = text.rpartition("</think>")
        reasoning.append(head.replace("<think>", "").strip())
    if "<think>" in text:
        text, _, tail = text.partition("<think>")
        reasoning.append(tail.strip())
    joined = "\n".join(r for r in reasoning if r)
    return text.strip(), joined or None


def parse_arguments(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """Parse tool-call arguments, repairing common damage; returns (arguments, error)."""
    text = raw.strip()
    if not text:
        return {}, None
    candidates = [text]
    unfenced = _FENCE.sub("", text).strip()
    candidates.append(unfenced)
    candidates.append(_TRAILING_COMMA.sub(r"\1", unfenced))
    candidates.append(_close_brackets(_TRAILING_COMMA.sub(r"\1", unfenced)))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        return _as_object(value)
    try:
        # Models sometimes write Python literals: single quotes, True/None.
        value = ast.literal_eval(unfenced)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None, f"arguments are not valid JSON: {raw[:300]!r}"
    return _as_object(value)


def _as_object(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(value, str):
        # Double-encoded JSON: a string containing the object.
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None, "arguments must be a JSON object, got a string"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _close_brackets(text: str) -> str:
    """Append the closers a truncated JSON object is missing (outside strings)."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    return text + ('"' if in_string else "") + "".join(reversed(stack))


def extract_tool_calls(content: str) -> tuple[str, list[tuple[str, str]]]:
    """Pull hermes `<tool_call>{"name":…, "arguments":…}</tool_call>` blocks out of content.

    Returns the remaining text and (name, raw arguments JSON) pairs; a block whose name cannot be
    read is returned with name "" so the caller can re-ask the model.
    """
    calls: list[tuple[str, str]] = []
    for match in _TOOL_CALL_BLOCK.finditer(content):
        body = match.group(1)
        parsed, _ = parse_arguments(body)
        if parsed is None or not isinstance(parsed.get("name"), str):
            calls.append(("", body))
            continue
        args = parsed.get("arguments", parsed.get("parameters", {}))
        calls.append((parsed["name"], args if isinstance(args, str) else json.dumps(args)))
    remaining = _TOOL_CALL_BLOCK.sub("", content).strip()
    return remaining, calls
