"""The HTTP side of the endpoint probe: the model cards, one raw sample, failures in words.

Why not `LLMClient`: the client retries, and repairs what a misconfigured vLLM sends (`<tool_call>`
text, `<think>` in content) so that conversations keep working. A probe must see the first answer
exactly as it came, or it cannot tell the operator which `vllm serve` flag is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.llm.errors import ModelResponseError
from agent.llm.sse import iter_events

START_VLLM = (
    "start vLLM (`vllm serve … --port 8000`, see README) or set DADANG_LLM_BASE_URL "
    "to its OpenAI URL, e.g. http://gpu-box:8000/v1"
)


@dataclass
class Sample:
    """One chat completion as it came over the wire, unrepaired."""

    content: str = ""
    reasoning: str = ""
    reasoning_field: str | None = None
    """`reasoning` (current vLLM) or `reasoning_content` (older vLLM), whichever carried it."""
    calls: dict[int, list[str]] = field(default_factory=dict)
    """Tool calls by index: [name, arguments joined from their fragments]."""
    finish_reason: str | None = None
    first_token: float | None = None
    """Seconds from sending the request to the first generated text (streamed samples only)."""
    total: float = 0.0
    """Seconds from sending the request to the end of the answer."""

    def feed(self, delta: dict[str, Any], started: float) -> None:
        """Take one streamed `delta` or one whole `message`."""
        for name in ("reasoning", "reasoning_content"):
            if delta.get(name):
                self.reasoning += str(delta[name])
                self.reasoning_field = self.reasoning_field or name
        self.content += str(delta.get("content") or "")
        for i, call in enumerate(delta.get("tool_calls") or []):
            entry = self.calls.setdefault(int(call.get("index", i)), ["", ""])
            function = call.get("function") or {}
            entry[0] = function.get("name") or entry[0]
            entry[1] += function.get("arguments") or ""
        if self.first_token is None and (self.content or self.reasoning or self.calls):
            self.first_token = time.perf_counter() - started


class EndpointError(Exception):
    """The endpoint failed; `detail` says what happened and `fix` what to do about it."""

    def __init__(
        self, detail: str, *, fix: str | None, status: int | None = None, message: str = ""
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix
        self.status = status
        """The HTTP status, or None when no answer came (the later probes are pointless)."""
        self.message = message
        """The server's own error message, verbatim."""


class Endpoint:
    """An OpenAI-compatible base URL, asked one request at a time, never retried."""

    def __init__(
        self, *, base_url: str, api_key: str | None, timeout: float, connect_timeout: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._has_key = bool(api_key)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
        )

    async def aclose(self) -> None:
        """Close the connection."""
        await self._http.aclose()

    async def cards(self) -> list[dict[str, Any]]:
        """`GET /models`: vLLM's model cards (`id`, `root`, `max_model_len`).

        Raises:
            EndpointError: no answer, an HTTP error, or not a model list.
        """
        try:
            response = await self._http.get("models")
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code == 404:
            raise EndpointError(
                f"{self.base_url}/models does not exist (HTTP 404)",
                fix="DADANG_LLM_BASE_URL must be the OpenAI base URL ending in /v1, "
                "e.g. http://gpu-box:8000/v1",
                status=404,
            )
        if response.status_code >= 400:
            raise self._status_error(response)
        try:
            cards = response.json()["data"]
            if not isinstance(cards, list):
                raise TypeError(type(cards))
        except (ValueError, KeyError, TypeError) as exc:
            raise EndpointError(
                f"{self.base_url}/models did not answer with a model list: {response.text[:120]!r}",
                fix="point DADANG_LLM_BASE_URL at an OpenAI-compatible server (vLLM: …:8000/v1)",
                status=response.status_code,
            ) from exc
        return [c for c in cards if isinstance(c, dict)]

    async def sample(
        self,
        body: dict[str, Any],
        *,
        stream: bool = True,
        enough: Callable[[Sample], bool] | None = None,
    ) -> Sample:
        """One chat completion; a stream is cut once `enough` says the answer is known.

        Cutting the stream closes the connection, and vLLM aborts a request whose client left,
        so a thinking model does not spend the GPU on a probe nobody reads.

        Raises:
            EndpointError: no answer, an HTTP error, or an unreadable answer.
        """
        sample = Sample()
        started = time.perf_counter()
        payload = {**body, "stream": stream}
        try:
            if not stream:
                response = await self._http.post("chat/completions", json=payload)
                if response.status_code >= 400:
                    raise self._status_error(response)
                choice = (response.json().get("choices") or [{}])[0]
                sample.feed(choice.get("message") or {}, started)
                sample.finish_reason = choice.get("finish_reason")
            else:
                async with self._http.stream("POST", "chat/completions", json=payload) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        raise self._status_error(resp)
                    async for event in iter_events(resp.aiter_lines()):
                        for choice in event.get("choices") or []:
                            sample.feed(choice.get("delta") or {}, started)
                            sample.finish_reason = choice.get("finish_reason") or (
                                sample.finish_reason
                            )
                        if enough is not None and enough(sample):
                            break
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        except (ModelResponseError, ValueError, AttributeError) as exc:
            raise EndpointError(
                f"the answer could not be read: {exc}",
                fix="point DADANG_LLM_BASE_URL at vLLM's OpenAI server",
            ) from exc
        sample.total = time.perf_counter() - started
        return sample

    def _transport_error(self, exc: httpx.HTTPError) -> EndpointError:
        if isinstance(exc, httpx.ConnectTimeout):
            return EndpointError(
                f"no connection to {self.base_url} within {self._connect_timeout:g} s",
                fix="check the host, the port and any firewall between here and vLLM "
                "(or raise DADANG_LLM_CONNECT_TIMEOUT)",
            )
        if isinstance(exc, httpx.TimeoutException):
            return EndpointError(
                f"{self.base_url} accepted the request but did not answer "
                f"within {self._timeout:g} s",
                fix="vLLM may still be loading the model (GET /health answers 200 when ready) "
                "or the GPU is saturated; wait, or raise DADANG_LLM_TIMEOUT",
            )
        if isinstance(exc, httpx.ConnectError):
            why = "connection refused" if _refused(exc) else str(exc) or type(exc).__name__
            return EndpointError(f"nothing answers at {self.base_url} ({why})", fix=START_VLLM)
        return EndpointError(
            f"the connection to {self.base_url} broke: {exc!r}",
            fix="check that DADANG_LLM_BASE_URL points at vLLM's OpenAI server, not a proxy "
            "that cuts long requests",
        )

    def _status_error(self, response: httpx.Response) -> EndpointError:
        status = response.status_code
        message = _error_message(response)
        if status == 401:
            detail = (
                "the server refused DADANG_LLM_API_KEY (HTTP 401)"
                if self._has_key
                else "the server wants an API key (HTTP 401)"
            )
            fix = "set DADANG_LLM_API_KEY to the value vLLM was started with (--api-key)"
            return EndpointError(detail, fix=fix, status=status, message=message)
        return EndpointError(f"HTTP {status}: {message}", fix=None, status=status, message=message)


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _error_message(response: httpx.Response) -> str:
    """The message of vLLM's error body (`{"error": {...}}`, older `{"object": "error", ...}`)."""
    try:
        data = response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        if isinstance(err, str):
            return err[:300]
    return str(data)[:300]
