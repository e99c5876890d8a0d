"""A vLLM-faithful OpenAI-compatible server serving Qwen3, for tests and benchmarks.

Why not mock httpx: Dadang's OpenAI client must run unchanged, so this fake speaks the wire
format that ``vllm serve ... --enable-auto-tool-choice --tool-call-parser hermes
--reasoning-parser qwen3`` produces (see shared/WIRE.md): SSE chunk order, tool-call
fragments joined by ``index``, ``reasoning`` vs. ``reasoning_content``, the usage chunk,
vLLM's error bodies, and ``--api-key`` guarding only ``/v1/*``.

Replies are scripted: a FIFO consumed one per chat-completions request, then ``default``.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import json
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .server import ThreadedServer
from .vllm_script import (
    JSON,
    Reply,
    Responder,
    content_text,
    echo,
    error,
    hang,
    raw_content,
    text,
    tool_calls,
    use_offered_tool,
)
from .vllm_serving import ServeFlags

__all__ = [
    "FakeVLLM",
    "Reply",
    "error",
    "hang",
    "raw_content",
    "text",
    "tool_calls",
    "use_offered_tool",
]

CHUNK_CHARS = 8
"""Streamed text is cut into pieces this long, so clients must really reassemble."""

_ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


def _pieces(value: str, size: int = CHUNK_CHARS, *, at_least: int = 1) -> list[str]:
    if not value:
        return [value]
    size = max(1, min(size, math.ceil(len(value) / at_least)))
    return [value[i : i + size] for i in range(0, len(value), size)]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class FakeVLLM:
    """vLLM's OpenAI server on a loopback port. See the module docstring for why."""

    def __init__(
        self,
        *,
        model: str = "qwen3",
        latency: float = 0.0,
        api_key: str | None = None,
        reasoning_field: Literal["reasoning", "reasoning_content"] = "reasoning",
        root: str = "Qwen/Qwen3-30B-A3B-Instruct-2507",
        max_model_len: int = 32768,
        port: int = 0,
        enable_auto_tool_choice: bool = True,
        tool_call_parser: str | None = "hermes",
        reasoning_parser: str | None = "qwen3",
        thinks: bool = False,
        responder: Responder = echo,
    ) -> None:
        """Defaults: ``vllm serve <Instruct-2507> --enable-auto-tool-choice --tool-call-parser
        hermes --reasoning-parser qwen3``, a model that echoes. The serving options change the
        wire as vLLM does (see ``vllm_serving``): ``enable_auto_tool_choice=False`` refuses
        ``tool_choice: "auto"`` with vLLM's 400; another ``tool_call_parser`` leaves
        ``<tool_call>`` text in ``content``; ``reasoning_parser=None`` leaves ``<think>`` in
        ``content``; ``thinks`` makes unscripted answers think unless ``enable_thinking`` is
        false. ``responder`` answers requests nothing was pushed for (``use_offered_tool``: a
        model that calls the tool it is offered).
        """
        self.flags = ServeFlags(
            enable_auto_tool_choice=enable_auto_tool_choice,
            tool_call_parser=tool_call_parser,
            reasoning_parser=reasoning_parser,
            thinks=thinks,
        )
        self.model = model
        self.latency = latency
        self.api_key = api_key
        self.reasoning_field = reasoning_field
        self.root = root
        self.max_model_len = max_model_len
        self._responder = responder
        self.default: Responder = responder
        self.requests: list[JSON] = []
        """Parsed bodies received on /v1/chat/completions, in arrival order."""
        self.held_ms: list[float] = []
        """Per chat-completions request: ms from arrival until the response (or stream) began;
        the same value is sent in the ``x-fake-held-ms`` header of every response."""
        self.models_calls = 0
        self.embeddings_calls = 0
        self.embeddings_status: int | None = None
        """When set, /v1/embeddings answers this HTTP error (an embeddings outage)."""
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._running = 0
        self._created = int(time.time())
        app = Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        self.server = ThreadedServer(app, name="fake-vllm", port=port)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.server.base + "/v1"

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> FakeVLLM:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> FakeVLLM:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- scripting ----------------------------------------------------------------------
    def push(self, *replies: Reply) -> None:
        """Queue replies; each chat-completions request consumes one, in order."""
        with self._lock:
            self._queue.extend(replies)

    def pending(self) -> int:
        """How many scripted replies are still queued."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget recorded traffic and scripted replies; restore the constructor's responder."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.held_ms.clear()
            self.models_calls = 0
            self.default = self._responder

    # -- HTTP handlers ------------------------------------------------------------------
    def _finish(self, response: Response, started: float, *, record: bool = False) -> Response:
        held = (time.monotonic() - started) * 1000
        if record:
            with self._lock:
                self.held_ms.append(held)
        response.headers["x-fake-held-ms"] = f"{held:.3f}"
        return response

    def _unauthorized(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token == self.api_key:
            return None
        return JSONResponse({"error": "Unauthorized"}, status_code=401)  # vLLM's exact body

    async def _health(self, request: Request) -> Response:
        return self._finish(Response(status_code=200), time.monotonic())

    async def _metrics(self, request: Request) -> Response:
        body = (
            "# TYPE vllm:num_requests_running gauge\n"
            f'vllm:num_requests_running{{model_name="{self.model}"}} {self._running}\n'
        )
        return self._finish(PlainTextResponse(body), time.monotonic())

    async def _models(self, request: Request) -> Response:
        started = time.monotonic()
        if (denied := self._unauthorized(request)) is not None:
            return self._finish(denied, started)
        with self._lock:
            self.models_calls += 1
        card = {
            "id": self.model,
            "object": "model",
            "created": self._created,
            "owned_by": "vllm",
            "root": self.root,
            "parent": None,
            "max_model_len": self.max_model_len,
            "permission": [],
        }
        return self._finish(JSONResponse({"object": "list", "data": [card]}), started)

    async def _embeddings(self, request: Request) -> Response:
        """vLLM's /v1/embeddings (as served for embedding models such as Qwen3-Embedding).

        Vectors are deterministic hashes of character bigrams, so texts that share words are
        similar; enough to exercise the client, not a model.
        """
        started = time.monotonic()
        if (denied := self._unauthorized(request)) is not None:
            return self._finish(denied, started)
        with self._lock:
            self.embeddings_calls += 1
        if self.embeddings_status is not None:
            return self._finish(
                self._error_response(self.embeddings_status, "embeddings down"), started
            )
        body = await request.json()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [
            {"object": "embedding", "index": i, "embedding": _hash_vector(str(t))}
            for i, t in enumerate(texts)
        ]
        tokens = sum(max(1, len(str(t)) // 4) for t in texts)
        payload = {
            "id": f"embd-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self._finish(JSONResponse(payload), started)

    def _error_response(
        self,
        status: int,
        message: str,
        *,
        err_type: str | None = None,
        legacy: bool = False,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> Response:
        kind = err_type or _ERROR_TYPES.get(status) or HTTPStatus(status).phrase
        info = {"message": message, "type": kind, "param": param, "code": status}
        body = {"object": "error", **info} if legacy else {"error": info}
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = (
                str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            )
        return JSONResponse(body, status_code=status, headers=headers)

    async def _chat(self, request: Request) -> Response:
        started = time.monotonic()

        def done(response: Response) -> Response:
            return self._finish(response, started, record=True)

        if (denied := self._unauthorized(request)) is not None:
            return done(denied)
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return done(self._error_response(400, f"Invalid JSON body: {exc}"))
        if not isinstance(body, dict):
            return done(self._error_response(400, "Request body must be a JSON object"))
        with self._lock:
            self.requests.append(body)
        if body.get("model") not in (None, self.model):
            msg = f"The model `{body.get('model')}` does not exist."
            return done(self._error_response(404, msg, param="model"))
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return done(self._error_response(400, "messages: Field required"))
        if (refused := self.flags.refusal(body)) is not None:
            return done(self._error_response(400, refused))

        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
        reply: Reply
        if scripted is not None:
            reply = scripted
        else:
            produced = self.default(body)
            reply = await produced if inspect.isawaitable(produced) else produced

        reply = self.flags.shape(body, reply, scripted=scripted is not None)
        self._running += 1
        try:
            delay = self.latency if reply.latency is None else reply.latency
            if delay > 0:
                await asyncio.sleep(delay)  # never blocks other requests
        finally:
            self._running -= 1
        if reply.status != 200:
            resp = self._error_response(
                reply.status,
                reply.error_message,
                err_type=reply.error_type,
                legacy=reply.legacy_error,
                retry_after=reply.retry_after,
            )
            return done(resp)
        usage = reply.usage or self._usage(body, reply)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = self._sse(reply, usage if include_usage else None)
            return done(StreamingResponse(stream, media_type="text/event-stream"))
        return done(JSONResponse(self._completion(reply, usage)))

    # -- bodies ---------------------------------------------------------------------------
    def _usage(self, body: JSON, reply: Reply) -> dict[str, int]:
        """A rough 4-characters-per-token estimate: enough for code that sums usage."""
        prompt = sum(
            len(content_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict)
        )
        produced = (
            len(reply.content or "")
            + len(reply.reasoning or "")
            + sum(len(a) for _, a in reply.tool_calls)
        )
        p, c = prompt // 4 + 1, produced // 4 + 1
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _completion(self, reply: Reply, usage: dict[str, int]) -> JSON:
        calls = [
            {
                "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
                "type": "function",
                "function": {"name": n, "arguments": a},
            }
            for n, a in reply.tool_calls
        ]
        message = {
            "role": "assistant",
            "content": reply.content,
            self.reasoning_field: reply.reasoning,
            "tool_calls": calls,
        }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                    "stop_reason": None,
                }
            ],
            "usage": {**usage, "prompt_tokens_details": None},
            "prompt_logprobs": None,
        }

    def _deltas(self, reply: Reply) -> list[JSON]:
        """The ``delta`` objects in vLLM's order: role, reasoning, content, tool-call fragments."""
        deltas: list[JSON] = [{"role": "assistant", "content": ""}]
        for piece in _pieces(reply.reasoning) if reply.reasoning else []:
            deltas.append({self.reasoning_field: piece})
        for piece in _pieces(reply.content) if reply.content else []:
            deltas.append({"content": piece})
        for index, (name, args) in enumerate(reply.tool_calls):
            head = {
                "id": f"chatcmpl-tool-{uuid.uuid4().hex}",
                "type": "function",
                "index": index,
                "function": {"name": name, "arguments": ""},
            }
            deltas.append({"tool_calls": [head]})
            for piece in _pieces(args, at_least=2) if args else []:
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        if len(deltas) == 1:  # nothing generated: vLLM still sends a closing empty delta
            deltas.append({"content": ""})
        return deltas

    async def _sse(self, reply: Reply, usage: dict[str, int] | None) -> AsyncIterator[str]:
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }
        deltas = self._deltas(reply)
        for i, delta in enumerate(deltas):
            if i:  # yield even without a delay, so a client that left is noticed, as vLLM does
                await asyncio.sleep(reply.chunk_delay)
            finish = reply.finish_reason if i == len(deltas) - 1 else None
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            yield f"data: {_dumps({**head, 'choices': [choice]})}\n\n"
        if usage is not None:
            yield f"data: {_dumps({**head, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"


def _hash_vector(text: str, dims: int = 64) -> list[float]:
    vector = [0.0] * dims
    lowered = text.lower()
    for a, b in itertools.pairwise(lowered):
        vector[hash_pair(a + b) % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def hash_pair(pair: str) -> int:
    """A stable hash (Python's own is salted per process)."""
    return int.from_bytes(pair.encode("utf-8")[:8].ljust(8, b"\0"), "little") * 2654435761
