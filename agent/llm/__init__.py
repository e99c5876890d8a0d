"""OpenAI-compatible client for vLLM serving Qwen3: streaming, hermes tool calls, retries."""

from agent.llm.client import LLMClient, LLMObserver
from agent.llm.errors import (
    ModelError,
    ModelRequestError,
    ModelResponseError,
    ModelUnavailable,
)
from agent.llm.types import Completion, ToolCall

__all__ = [
    "Completion",
    "LLMClient",
    "LLMObserver",
    "ModelError",
    "ModelRequestError",
    "ModelResponseError",
    "ModelUnavailable",
    "ToolCall",
]
