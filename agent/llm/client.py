"""OpenAI-compatible chat completions against vLLM, with the failure handling a chat needs.

httpx is used directly (not an SDK) so that vLLM specifics stay visible: `reasoning` fields,
`chat_template_kwargs`, hermes tool calls split across SSE chunks, and legacy error bodies.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from agent.llm.assemble import Assembler
from agent.llm.errors import ModelRequestError, ModelResponseError, ModelUnavailable
from agent.llm.sse import iter_events
from agent.llm.types import Completion, Message

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_REASK = (
    "Your previous tool call could not be used: {errors}. Call the tool again with arguments "
    "that are one valid JSON object matching its schema, or answer without a tool."
)


class LLMObserver(Protocol):
    """Receives one report per HTTP request (metrics, audit)."""

    def __call__(
        self, *, latency: float, prompt_tokens: int, completion_tokens: int, outcome: str
    ) -> None: ...


def _no_observer(
    *, latency: float, prompt_tokens: int, completion_tokens: int, outcome: str
) -> None:
    return None


class LLMClient:
    """A client for one OpenAI-compatible endpoint; safe to share across conversations."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        observer: LLMObserver = _no_observer,
        max_connections: int = 64,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        self._model = model
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._observe = observer
        self.base_url = base_url

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    async def models(self) -> list[str]:
        """Model ids the server lists (`GET /v1/models`), without retries: used for health."""
        try:
            response = await self._http.get("models")
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"cannot reach the model at {self.base_url}: {exc!r}") from exc
        if response.status_code >= 400:
            raise _status_error(response)
        try:
            data = response.json()["data"]
            return [str(m["id"]) for m in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelResponseError(f"{self.base_url}/models did not list models") from exc

    async def model(self) -> str:
        """The configured model, or the first one the server lists (cached once found)."""
        if self._model is None:
            listed = await self.models()
            if not listed:
                raise ModelRequestError(
                    f"{self.base_url} lists no models; set DADANG_LLM_MODEL", status=404
                )
            self._model = listed[0]
        return self._model

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        thinking: bool | None = None,
        stream: bool = True,
        max_tokens: int | None = None,
        temperature: float | None = None,
        on_text: Callable[[str], None] | None = None,
        reask_broken_tool_calls: bool = True,
    ) -> Completion:
        """Ask the model; retries transient faults and re-asks once for a broken tool call.

        Raises:
            ModelUnavailable: the server could not answer after every retry.
            ModelRequestError: the server rejected the request (not retryable).
            ModelResponseError: the answer was unreadable after every retry.
        """
        started = time.perf_counter()
        body: dict[str, Any] = {"model": await self.model(), "messages": messages}
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        if thinking is not None:
            body["chat_template_kwargs"] = {"enable_thinking": thinking}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        completion, calls = await self._with_retries(body, stream=stream, on_text=on_text)
        broken = [c for c in completion.tool_calls if c.arguments is None]
        if broken and reask_broken_tool_calls:
            errors = "; ".join(f"{c.name or '?'}: {c.error}" for c in broken)
            retry_body = dict(body)
            retry_body["messages"] = [
                *messages,
                {"role": "assistant", "content": completion.content or ""},
                {"role": "user", "content": _REASK.format(errors=errors)},
            ]
            second, more = await self._with_retries(retry_body, stream=stream, on_text=None)
            completion, calls = second, calls + more
        return Completion(
            content=completion.content,
            reasoning=completion.reasoning,
            tool_calls=completion.tool_calls,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            model=completion.model,
            latency=time.perf_counter() - started,
            calls=calls,
        )

    async def _with_retries(
        self, body: dict[str, Any], *, stream: bool, on_text: Callable[[str], None] | None
    ) -> tuple[Completion, int]:
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                completion = await (self._stream(body, on_text) if stream else self._plain(body))
            except _Retryable as exc:
                self._observe(
                    latency=time.perf_counter() - started,
                    prompt_tokens=0,
                    completion_tokens=0,
                    outcome="retry",
                )
                if attempt > self._max_retries:
                    raise ModelUnavailable(
                        f"the model at {self.base_url} failed {attempt} times: {exc.reason}"
                    ) from exc
                await asyncio.sleep(self._delay(attempt, exc.retry_after))
                continue
            except (ModelRequestError, ModelResponseError):
                self._observe(
                    latency=time.perf_counter() - started,
                    prompt_tokens=0,
                    completion_tokens=0,
                    outcome="error",
                )
                raise
            self._observe(
                latency=time.perf_counter() - started,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                outcome="ok",
            )
            return completion, attempt

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter spreads retries of many conversations that failed at the same moment.
        backoff = random.uniform(0, min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1)))
        if retry_after is not None:
            return max(min(retry_after, self._backoff_cap * 3), backoff)
        return backoff

    async def _plain(self, body: dict[str, Any]) -> Completion:
        started = time.perf_counter()
        try:
            response = await self._http.post("chat/completions", json={**body, "stream": False})
        except httpx.HTTPError as exc:
            raise _Retryable(repr(exc)) from exc
        if response.status_code >= 400:
            raise _status_error(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise _Retryable(f"response is not JSON: {response.text[:200]!r}") from exc
        if not isinstance(data, dict) or "choices" not in data:
            raise _Retryable(f"response is not a completion: {str(data)[:200]!r}")
        assembler = Assembler()
        assembler.feed_response(data)
        return assembler.result(latency=time.perf_counter() - started, calls=1)

    async def _stream(
        self, body: dict[str, Any], on_text: Callable[[str], None] | None
    ) -> Completion:
        started = time.perf_counter()
        payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
        assembler = Assembler()
        try:
            async with self._http.stream("POST", "chat/completions", json=payload) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _status_error(response)
                async for event in iter_events(response.aiter_lines()):
                    added = assembler.feed_chunk(event)
                    if added and on_text is not None:
                        on_text(added)
        except httpx.HTTPError as exc:
            raise _Retryable(repr(exc)) from exc
        except ModelResponseError as exc:
            raise _Retryable(str(exc)) from exc
        if assembler.finish_reason is None and not assembler.content and not assembler.calls:
            raise _Retryable("the stream ended before any answer")
        return assembler.result(latency=time.perf_counter() - started, calls=1)


class _Retryable(Exception):
    """A fault worth another attempt (never escapes the client)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _status_error(response: httpx.Response) -> Exception:
    message = _error_message(response)
    status = response.status_code
    if status in _RETRY_STATUS:
        retry_after: float | None = None
        header = response.headers.get("retry-after")
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        return _Retryable(f"HTTP {status}: {message}", retry_after=retry_after)
    if status == 401:
        message += " (set DADANG_LLM_API_KEY to the server's --api-key)"
    return ModelRequestError(
        f"the model server refused the request (HTTP {status}): {message}", status=status
    )


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
    return str(data)[:300]
