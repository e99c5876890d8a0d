"""Server-sent events as vLLM emits them: `data: {json}` lines ending with `data: [DONE]`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agent.llm.errors import ModelResponseError


async def iter_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Yield each JSON event until `[DONE]`; comments, blank lines and other fields are skipped.

    Raises:
        ModelResponseError: an event is not JSON, or the server sent an error event.
    """
    async for raw in lines:
        line = raw.strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ModelResponseError(f"unreadable stream event: {payload[:200]!r}") from exc
        if not isinstance(event, dict):
            raise ModelResponseError(f"unexpected stream event: {payload[:200]!r}")
        if "error" in event or event.get("object") == "error":
            err = event.get("error", event)
            message = err.get("message") if isinstance(err, dict) else str(err)
            raise ModelResponseError(f"the model server reported an error mid-stream: {message}")
        yield event
