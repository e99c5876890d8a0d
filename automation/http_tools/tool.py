"""`HttpTool`: a tool built from an `HttpToolSpec`, calling its endpoint through the network guard.

Why each piece: the host must be in the policy's `api_hosts` (`automation.net` checks every hop);
secrets are fetched by name at call time and scrubbed from whatever text leaves the tool; only
GET and HEAD are retried, since repeating a POST may book the room twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final, Literal, cast
from urllib.parse import quote, quote_plus, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, create_model

from automation.http_tools.spec import HttpToolSpec, Parameter, QueryAuth
from automation.net import (
    ConnectFailed,
    GuardedResponse,
    HostPolicy,
    NetworkError,
    NetworkTimeout,
    guarded_request,
)
from automation.tools.base import Tool, ToolContext, ToolError
from automation.tools.scopes import DataScopes

SecretResolver = Callable[[int, str], Awaitable[str | None]]
"""`(user_id, name) -> value`; None (or an exception) when the user has no such secret."""

MAX_BYTES: Final = 2 * 1024 * 1024
"""Largest response read; an API answer bigger than 2 MB is not something to summarise."""
MAX_RETRIES: Final = 2
RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
BACKOFF: Final = 0.25
"""Seconds before the first retry; doubled for the next."""
MAX_RETRY_AFTER: Final = 3.0
"""Longest Retry-After honoured; a server asking for more gets the error instead."""
TRUNCATED: Final = "… (truncated)"

_IDEMPOTENT: Final = frozenset({"GET", "HEAD"})
_HEADERS: Final = {"User-Agent": "Dadang/0.1 (personal assistant; http tool)"}
_POLICY_HINT: Final = "scopes.api_hosts in policy.yaml"
_TYPES: Final[dict[str, Any]] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list[str],
    "object": dict[str, Any],
}


class HttpTool(Tool[BaseModel]):
    """Calls one HTTP endpoint; `build_tool` makes a subclass per spec."""

    spec: ClassVar[HttpToolSpec]
    untrusted_output = True
    reads = frozenset({"api"})

    def __init__(self, *, resolve_secret: SecretResolver | None = None) -> None:
        self._resolve_secret = resolve_secret

    def target(self, arguments: dict[str, Any]) -> str:
        """`host` or `host:port` of the endpoint (a non-default port is a different service)."""
        try:
            parts = urlsplit(self.spec.url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            return ""
        default = {"http": 80, "https": 443}.get(parts.scheme)
        return f"{host}:{port}" if host and port is not None and port != default else host

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        spec = self.spec
        values = args.model_dump(by_alias=True, exclude_none=True)
        secret = await self._secret(ctx.user_id)
        url, headers, body = _request_parts(spec, values, secret)
        try:
            response = await self._send(url, headers=headers, body=body, ctx=ctx)
        except NetworkError as exc:
            raise ToolError(_scrub(f"{spec.name}: {exc}", secret)) from None
        if response.status >= 400:
            excerpt = _error_excerpt(response)
            raise ToolError(
                _scrub(f"{spec.name}: HTTP {response.status} {response.reason}: {excerpt}", secret)
            )
        return _scrub(_render(response, spec), secret)

    async def _secret(self, user_id: int) -> str | None:
        if self.spec.auth is None:
            return None
        name = self.spec.auth.secret
        unset = f"secret {name} is not set; run: dadang secrets set {name}"
        if self._resolve_secret is None:
            raise ToolError(unset)
        try:
            value = await self._resolve_secret(user_id, name)
        except Exception:  # the store's message could say more, but "set it" is the fix
            raise ToolError(unset) from None
        if not value:
            raise ToolError(unset)
        return value

    async def _send(
        self, url: str, *, headers: dict[str, str], body: dict[str, Any] | None, ctx: ToolContext
    ) -> GuardedResponse:
        """The response, after up to MAX_RETRIES retries of a GET or HEAD that may work later."""
        retries = MAX_RETRIES if self.spec.method in _IDEMPOTENT else 0
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                response = await guarded_request(
                    self.spec.method,
                    url,
                    policy=_policy(ctx.scopes),
                    headers=headers,
                    json=body,
                    max_bytes=MAX_BYTES,
                    time_limit=self.spec.timeout,
                    same_host=ctx.tainted,
                )
            except (ConnectFailed, NetworkTimeout):
                if last:
                    raise
                await asyncio.sleep(BACKOFF * 2**attempt)
                continue
            if last or response.status not in RETRY_STATUSES:
                return response
            wait = _retry_after(response.headers.get("retry-after"), BACKOFF * 2**attempt)
            if wait is None:
                return response
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


def build_tool(
    spec: HttpToolSpec, *, source: str, resolve_secret: SecretResolver | None = None
) -> HttpTool:
    """An `HttpTool` instance for `spec`; `source` is recorded in the audit (`http:<file>`)."""
    cls = type(
        f"HttpTool_{spec.name}",
        (HttpTool,),
        {
            "spec": spec,
            "name": spec.name,
            "description": spec.description,
            "args_model": args_model(spec),
            "risk": spec.effective_risk,
            "source": source,
        },
    )
    return cast(type[HttpTool], cls)(resolve_secret=resolve_secret)


def args_model(spec: HttpToolSpec) -> type[BaseModel]:
    """The pydantic model of the tool's arguments, one field per parameter."""
    # Fields get neutral names and the parameter name as alias, so a parameter may be called
    # `json` or `X-Request-Id` without clashing with BaseModel or Python syntax.
    fields: dict[str, Any] = {
        f"p{index}": _field(param) for index, param in enumerate(spec.parameters)
    }
    model = create_model(
        f"{spec.name}_args",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    return cast(type[BaseModel], model)


def _field(param: Parameter) -> tuple[Any, Any]:
    kind: Any = _TYPES[param.type]
    if param.enum:
        kind = Literal[tuple(param.enum)]
    description = param.description or None
    if param.required:
        return kind, Field(alias=param.name, description=description)
    return kind | None, Field(default=None, alias=param.name, description=description)


def _policy(scopes: DataScopes) -> HostPolicy:
    return HostPolicy(
        allows=scopes.allows_api_host,
        names=scopes.names_api_host,
        kind="API hosts",
        setting=_POLICY_HINT,
        verb="call",
        done="called",
        noun="APIs",
    )


def _request_parts(
    spec: HttpToolSpec, values: dict[str, Any], secret: str | None
) -> tuple[str, dict[str, str], dict[str, Any] | None]:
    """The URL (path and query filled in), the headers and the JSON body of one call."""
    url = spec.url
    query: list[tuple[str, str]] = []
    headers = dict(_HEADERS, Accept="application/json, */*;q=0.5")
    body: dict[str, Any] = {}
    for param in spec.parameters:
        if param.name not in values:
            continue
        value = values[param.name]
        if param.in_ == "path":
            url = url.replace("{" + param.name + "}", quote(_text(value), safe=""))
        elif param.in_ == "query":
            items = value if isinstance(value, list) else [value]
            query.extend((param.name, _text(item)) for item in items)
        elif param.in_ == "header":
            headers[param.name] = (
                ",".join(map(_text, value)) if isinstance(value, list) else _text(value)
            )
        else:
            body[param.name] = value
    auth = spec.auth
    if auth is not None and secret is not None:
        if isinstance(auth, QueryAuth):
            query.append((auth.name, secret))
        elif auth.type == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        else:
            headers[auth.name] = secret
    if query:
        url += ("&" if urlsplit(url).query else "?") + urlencode(query)
    sends_body = any(p.in_ == "body" for p in spec.parameters)
    return url, headers, body if sends_body else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _retry_after(header: str | None, default: float) -> float | None:
    """Seconds to wait before a retry; None when the server asks for longer than we wait."""
    if header is None:
        return default
    try:
        wait = max(0.0, float(header.strip()))
    except ValueError:
        return default  # an HTTP date: not worth parsing for a wait this short
    return wait if wait <= MAX_RETRY_AFTER else None


def _decode(response: GuardedResponse) -> str:
    return response.body.decode(response.charset or "utf-8", errors="replace")


def _error_excerpt(response: GuardedResponse) -> str:
    """A short reason from an error body: its `error`/`message`/`detail` field, or its start."""
    text = _decode(response).strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "title"):
            if isinstance(data.get(key), str):
                text = data[key]
                break
    text = " ".join(text.split()) or "(empty body)"
    return _truncate(text, 300)


def _render(response: GuardedResponse, spec: HttpToolSpec) -> str:
    """The answer as compact text: JSON cut to `keep` fields, everything cut to `max_chars`."""
    if not response.body.strip():
        return f"HTTP {response.status} {response.reason} (no content)"
    text = _decode(response)
    try:
        data = json.loads(text)
    except ValueError:
        return _truncate(text.strip(), spec.response.max_chars)
    keep = spec.response.keep
    if keep is not None:
        data = _keep(data, keep)
    compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return _truncate(compact, spec.response.max_chars)


def _keep(data: Any, keep: list[str]) -> Any:
    if isinstance(data, dict):
        return {key: data[key] for key in keep if key in data}
    if isinstance(data, list):
        return [_keep(item, keep) if isinstance(item, dict) else item for item in data]
    return data


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def _scrub(text: str, secret: str | None) -> str:
    """`text` without the secret, raw or URL-encoded (an error may quote the URL)."""
    if not secret:
        return text
    for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
        text = text.replace(form, "***")
    return text
