"""Turning vLLM responses (one JSON body, or stream chunks) into a `Completion`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.llm.repair import extract_tool_calls, parse_arguments, strip_think
from agent.llm.types import Completion, ToolCall


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Assembler:
    """Accumulates stream deltas; fragments of a tool call are joined by their `index`."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""

    def feed_chunk(self, chunk: dict[str, Any]) -> str:
        """Take one `chat.completion.chunk`; returns the reply text it added (for streaming UIs)."""
        self.model = chunk.get("model") or self.model
        self._usage(chunk.get("usage"))
        added = ""
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.content.append(text)
                added += text
            thought = delta.get("reasoning") or delta.get("reasoning_content")
            if thought:
                self.reasoning.append(thought)
            for frag in delta.get("tool_calls") or []:
                self._fragment(frag)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return added

    def feed_response(self, body: dict[str, Any]) -> None:
        """Take a non-streaming `chat.completion` body."""
        self.model = body.get("model") or self.model
        self._usage(body.get("usage"))
        choices = body.get("choices") or []
        if not choices:
            return
        choice = choices[0]
        message = choice.get("message") or {}
        if message.get("content"):
            self.content.append(message["content"])
        thought = message.get("reasoning") or message.get("reasoning_content")
        if thought:
            self.reasoning.append(thought)
        for i, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") or {}
            self.calls[i] = _PartialCall(
                id=call.get("id") or "",
                name=fn.get("name") or "",
                arguments=[fn.get("arguments") or ""],
            )
        self.finish_reason = choice.get("finish_reason")

    def _fragment(self, frag: dict[str, Any]) -> None:
        index = int(frag.get("index", len(self.calls)))
        partial = self.calls.setdefault(index, _PartialCall())
        if frag.get("id"):
            partial.id = frag["id"]
        fn = frag.get("function") or {}
        if fn.get("name"):
            partial.name = fn["name"]
        if fn.get("arguments"):
            partial.arguments.append(fn["arguments"])

    def _usage(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)

    def result(self, *, latency: float, calls: int) -> Completion:
        """The completion, with `<think>` removed and hermes text tool calls recovered."""
        text, think = strip_think("".join(self.content))
        reasoning = "".join(self.reasoning).strip() or None
        if think:
            reasoning = f"{reasoning}\n{think}" if reasoning else think
        tool_calls = [self._finish(p) for _, p in sorted(self.calls.items())]
        if not tool_calls and "<tool_call>" in text:
            text, found = extract_tool_calls(text)
            tool_calls = [
                self._finish(_PartialCall(name=name, arguments=[raw])) for name, raw in found
            ]
        return Completion(
            content=text,
            reasoning=reasoning,
            tool_calls=tool_calls,
            finish_reason=self.finish_reason,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            model=self.model,
            latency=latency,
            calls=calls,
        )

    @staticmethod
    def _finish(partial: _PartialCall) -> ToolCall:
        raw = "".join(partial.arguments)
        arguments, error = parse_arguments(raw)
        if not partial.name:
            arguments, error = None, "the tool call has no function name"
        return ToolCall(
            id=partial.id or f"call-{uuid.uuid4().hex[:12]}",
            name=partial.name,
            raw_arguments=raw,
            arguments=arguments,
            error=error,
        )
