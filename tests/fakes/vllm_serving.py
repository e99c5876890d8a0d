"""What ``vllm serve`` flags and the served model do to a reply before it reaches the wire.

Why a module of its own: a misconfigured vLLM does not fail loudly, it answers differently.
Without ``--enable-auto-tool-choice`` a request with ``tool_choice: "auto"`` (the default when
``tools`` are sent) is refused with a 400; with a tool-call parser that does not match the model,
Qwen3's ``<tool_call>`` text stays in ``content``; without ``--reasoning-parser`` a thinking model's
``<think>…</think>`` stays in ``content`` too. Messages are vLLM's own (see shared/WIRE.md):

- ``vllm/entrypoints/openai/serving_chat.py`` (``create_chat_completion``)::

      "auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set

- ``vllm/entrypoints/openai/cli_args.py`` (``validate_parsed_serve_args``, at start-up)::

      Error: --enable-auto-tool-choice requires --tool-call-parser

- ``vllm/entrypoints/openai/protocol.py`` (``check_tool_usage``): ``tools`` without
  ``tool_choice`` means ``"auto"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .vllm_script import JSON, Reply

AUTO_TOOL_CHOICE_REFUSED = (
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
)
"""vLLM's 400 message for ``tool_choice: "auto"`` on a server started without both flags."""

QWEN3_TOOL_PARSER = "hermes"
"""The parser that understands Qwen3's ``<tool_call>{json}</tool_call>`` output."""

THOUGHT = "The user wants a short answer. I will answer directly."
"""What a thinking model "thinks" when a test did not script its reasoning."""


@dataclass(frozen=True, kw_only=True)
class ServeFlags:
    """The ``vllm serve`` flags that change what a client sees, and the model's habits."""

    enable_auto_tool_choice: bool = True
    tool_call_parser: str | None = QWEN3_TOOL_PARSER
    reasoning_parser: str | None = "qwen3"
    thinks: bool = False
    """The model thinks unless ``enable_thinking`` is false (a Qwen3 hybrid such as Qwen3-8B);
    False: an Instruct-2507 model, which never thinks."""

    def __post_init__(self) -> None:
        if self.enable_auto_tool_choice and not self.tool_call_parser:
            # vLLM refuses to start; a test asking for this combination is wrong, not the client.
            raise TypeError("Error: --enable-auto-tool-choice requires --tool-call-parser")

    def refusal(self, body: JSON) -> str | None:
        """vLLM's 400 message when these flags cannot serve ``body``, else None."""
        if _tool_choice(body) == "auto" and not (
            self.enable_auto_tool_choice and self.tool_call_parser
        ):
            return AUTO_TOOL_CHOICE_REFUSED
        return None

    def shape(self, body: JSON, reply: Reply, *, scripted: bool) -> Reply:
        """The reply as vLLM's parsers hand it to the client."""
        thinking_off = (body.get("chat_template_kwargs") or {}).get("enable_thinking") is False
        if thinking_off:
            reply = replace(reply, reasoning=None)  # Qwen3 hybrid with thinking switched off
        elif self.thinks and not scripted and reply.reasoning is None:
            reply = replace(reply, reasoning=THOUGHT)
        if (
            reply.tool_calls
            and _tool_choice(body) == "auto"
            and self.tool_call_parser != QWEN3_TOOL_PARSER
        ):
            # The parser finds nothing it knows, so the model's own text goes out as content.
            blocks = "\n".join(_hermes_text(name, args) for name, args in reply.tool_calls)
            content = f"{reply.content}\n\n{blocks}" if reply.content else blocks
            reply = replace(reply, content=content, tool_calls=[], finish_reason="stop")
        if reply.reasoning and self.reasoning_parser is None:
            content = f"<think>\n{reply.reasoning}\n</think>\n\n{reply.content or ''}"
            reply = replace(reply, content=content, reasoning=None)
        return reply


def _tool_choice(body: JSON) -> object:
    """``tool_choice`` as vLLM reads it: ``"auto"`` when tools come without one."""
    if "tool_choice" not in body and body.get("tools"):
        return "auto"
    return body.get("tool_choice")


def _hermes_text(name: str, arguments: str) -> str:
    """One call the way Qwen3's chat template tells the model to write it."""
    try:
        args: object = json.loads(arguments)
    except ValueError:
        args = arguments
    call = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{call}\n</tool_call>"
