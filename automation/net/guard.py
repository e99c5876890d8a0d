"""`guarded_request`: one HTTP exchange with a host the policy allows, safe against SSRF.

Why so guarded: URLs come from the model, and the model may be repeating a web page or an email.
Every hop is checked against the policy and against the addresses its name resolves to, so a
public-looking name cannot reach the user's router or the cluster; the connection then goes to
an address that was checked (`automation.net.connect`), so DNS cannot change its answer in between.
Cloud metadata endpoints hand out the machine's credentials: they are refused even when listed.

Redirects are followed by hand, each hop vetted again:

- 301, 302 and 303 continue as a GET without a body (HEAD stays HEAD), as browsers do after a form.
- 307 and 308 keep the method and body, but a request other than GET or HEAD may only be
  redirected within its origin (scheme, host and port): a body is never re-sent elsewhere.
- Credentials (Authorization, Cookie, Proxy-Authorization) are dropped for good once a redirect
  leaves the first origin.
- With `same_host`, no redirect may leave the first host and port at all.
"""

from __future__ import annotations

import asyncio
import functools
import json as jsonlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from automation.net.connect import open_pinned, parse_url, vet
from automation.net.errors import ConnectFailed, NetworkRefused, NetworkTimeout, ResponseTooLarge

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_CREDENTIALS: Final = ("authorization", "cookie", "proxy-authorization")
_BODY_HEADERS: Final = ("content-type", "content-length", "content-encoding", "transfer-encoding")


@dataclass(frozen=True, kw_only=True)
class HostPolicy:
    """Which hosts a request may reach, and the words a refusal uses to say what to change."""

    allows: Callable[[str, int], bool]
    """May `host` (lower case) on `port` be contacted? It judges literal addresses alone, so it
    must itself demand that private ones be listed (`DataScopes.allows_site` does)."""
    names: Callable[[str, int], bool]
    """Is `host` on `port` listed by its exact name? A name resolving privately must be."""
    kind: str
    """What the policy lists, as refusals say it: "sites", "API hosts"."""
    setting: str
    """Where the user changes it: "scopes.sites in policy.yaml"."""
    verb: str = "read"
    """What the request does, in refusals: "read", "call" (a regular verb: "-ing" is appended)."""
    done: str = "read"
    """Its past participle: "read", "called"."""
    noun: str = "pages"
    """What is fetched, plural: "pages", "APIs"."""


@dataclass(frozen=True, kw_only=True)
class ResponseHead:
    """The final response before its body: what a caller checks to refuse a body early."""

    url: str
    """The address that answered, after redirects (the host name, not the pinned address)."""
    status: int
    reason: str
    headers: httpx.Headers
    media_type: str
    """Lower-case media type without parameters; "" when the server sent none."""
    charset: str | None
    """The charset of the Content-Type header, if any."""


@dataclass(frozen=True, kw_only=True)
class GuardedResponse(ResponseHead):
    """The final response of a guarded request, its body read in full."""

    body: bytes


async def guarded_request(
    method: str,
    url: str,
    *,
    policy: HostPolicy,
    max_bytes: int,
    time_limit: float,
    connect_limit: float | None = None,
    max_redirects: int = 5,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    json: Any = None,
    same_host: bool = False,
    follow_redirects: bool = True,
    inspect: Callable[[ResponseHead], None] | None = None,
) -> GuardedResponse:
    """Send `method` to `url` and read the answer, through the guard described above.

    `time_limit` (seconds) bounds the whole exchange: lookups, redirects and body. `json` (not
    None) is sent as an application/json body. `inspect` sees the final status and headers before
    the body is read and may raise to refuse it. A Host header given is replaced by `url`'s host.

    Raises:
        NetworkRefused: the scheme, policy, a private or metadata address, or a redirect refused.
        ConnectFailed: the name did not resolve or no connection could be made.
        NetworkTimeout: the exchange took longer than `time_limit` seconds.
        ResponseTooLarge: the body is longer than `max_bytes`.
    """
    if content is not None and json is not None:
        raise ValueError("pass content or json, not both")
    sent = httpx.Headers(headers)
    if json is not None:
        content = jsonlib.dumps(json, ensure_ascii=False).encode()
        sent.setdefault("Content-Type", "application/json")
    sent.pop("Host", None)
    try:
        async with asyncio.timeout(time_limit):
            return await _exchange(
                _Request(method=method.upper(), headers=sent, content=content),
                url,
                policy=policy,
                max_bytes=max_bytes,
                limits=httpx.Timeout(time_limit, connect=connect_limit or time_limit),
                max_redirects=max_redirects,
                same_host=same_host,
                follow_redirects=follow_redirects,
                inspect=inspect,
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise NetworkTimeout(f"{url} did not answer within {time_limit:g} s") from exc
    except httpx.HTTPError as exc:
        raise ConnectFailed(f"{policy.verb}ing {url} failed ({_reason(exc)})") from exc


@dataclass(frozen=True, kw_only=True)
class _Request:
    method: str
    headers: httpx.Headers
    content: bytes | None


async def _exchange(
    request: _Request,
    raw_url: str,
    *,
    policy: HostPolicy,
    max_bytes: int,
    limits: httpx.Timeout,
    max_redirects: int,
    same_host: bool,
    follow_redirects: bool,
    inspect: Callable[[ResponseHead], None] | None,
) -> GuardedResponse:
    url = parse_url(raw_url, policy=policy)
    first = (url.host, url.port)
    origin = _origin(url)
    # No keep-alive: a TLS connection made for one name must not carry a request for another name
    # on the same address. No proxies from the environment: a proxy would resolve names itself.
    pool = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        timeout=limits, limits=pool, trust_env=False, verify=_tls_context()
    ) as client:
        for hop in range(max_redirects + 1):
            via = f" (redirected from {raw_url})" if hop else ""
            addresses = await vet(url, policy, via=via)
            response = await open_pinned(
                client,
                request.method,
                url,
                addresses,
                headers=request.headers,
                content=request.content,
            )
            try:
                location = response.headers.get("location")
                if not (follow_redirects and response.status_code in _REDIRECTS and location):
                    return await _read(response, url, max_bytes=max_bytes, inspect=inspect)
                target = parse_url(location, policy=policy, base=url)
                if same_host and (target.host, target.port) != first:
                    # After untrusted content, the policy approved this host only; an open
                    # redirect must not carry the request (and its query) elsewhere.
                    raise NetworkRefused(
                        f"{raw_url} redirects to {target.host}, another host; after reading "
                        f"untrusted content only the approved host may be {policy.done} — ask "
                        f"the user before {policy.verb}ing the new address"
                    )
                request = _redirected(
                    request, response.status_code, leaves=_origin(target) != origin, to=target
                )
                url = target
            finally:
                await response.aclose()
    raise NetworkRefused(
        f"{raw_url} redirects more than {max_redirects} times; give the final address"
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every request: loading the CA bundle costs ~14 ms, which
    a fresh context per call paid on every API call (bench/tool_overhead.py)."""
    return httpx.create_ssl_context()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _redirected(request: _Request, status: int, *, leaves: bool, to: httpx.URL) -> _Request:
    """The request to send after a `status` redirect (see the module docstring)."""
    method, content, headers = request.method, request.content, request.headers.copy()
    if status in (301, 302, 303) and method not in _SAFE_METHODS:
        method, content = "GET", None
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    elif leaves and method not in _SAFE_METHODS:
        raise NetworkRefused(
            f"refusing to follow a {status} redirect of a {method} request to {to}: it would "
            "re-send the request body to another host; call that address directly if it is meant"
        )
    if leaves:
        for name in _CREDENTIALS:
            headers.pop(name, None)
    return _Request(method=method, headers=headers, content=content)


async def _read(
    response: httpx.Response,
    url: httpx.URL,
    *,
    max_bytes: int,
    inspect: Callable[[ResponseHead], None] | None,
) -> GuardedResponse:
    head = ResponseHead(
        url=str(url),
        status=response.status_code,
        reason=response.reason_phrase,
        headers=response.headers,
        media_type=response.headers.get("content-type", "").partition(";")[0].strip().lower(),
        charset=response.charset_encoding,
    )
    if inspect is not None:
        inspect(head)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(head.url, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLarge(head.url, max_bytes)
    return GuardedResponse(
        url=head.url,
        status=head.status,
        reason=head.reason,
        headers=head.headers,
        media_type=head.media_type,
        charset=head.charset,
        body=bytes(body),
    )


def _reason(exc: BaseException) -> str:
    """The root cause in words: anyio reports a refused connection as "all attempts failed"."""
    cause: BaseException | None = exc
    for _ in range(20):  # chains are short; the bound only guards against a cycle
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"invalid TLS certificate: {cause.verify_message}"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    return "connection refused" if "refused" in text.lower() else text or type(exc).__name__
