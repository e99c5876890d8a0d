"""Parsing helpers for what Qwen3 emits (pure functions, no server needed)."""

from __future__ import annotations

from agent.llm.repair import extract_tool_calls, parse_arguments, strip_think


def test_unclosed_think_is_all_reasoning() -> None:
    assert strip_think("<think>still thinking") == ("", "still thinking")


def test_truncated_arguments_are_closed() -> None:
    assert parse_arguments('{"text": "buy milk"') == ({"text": "buy milk"}, None)


def test_fenced_and_double_encoded_arguments() -> None:
    assert parse_arguments('```json\n{"a": 1}\n```') == ({"a": 1}, None)
    assert parse_arguments('"{\\"a\\": 1}"') == ({"a": 1}, None)


def test_non_object_arguments_are_an_error() -> None:
    args, error = parse_arguments("[1, 2]")
    assert args is None and error is not None and "object" in error


def test_garbage_tool_call_block_has_no_name() -> None:
    rest, calls = extract_tool_calls("before <tool_call>{nope</tool_call> after")
    assert calls == [("", "{nope")]
    assert rest == "before  after"
