"""`guarded_request` against a real HTTP server on 127.0.0.1 and a fake resolver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from automation.net import (
    ConnectFailed,
    GuardedResponse,
    HostPolicy,
    NetworkRefused,
    ResponseHead,
    ResponseTooLarge,
    guarded_request,
)
from automation.tools.scopes import DataScopes
from tests.conftest import free_port


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})
    body: bytes = b"ok"
    chunked: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ApiServer:
    """Answers any method on 127.0.0.1 from `routes`; records every request it receives."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                with contextlib.suppress(ConnectionError):
                    super().handle()

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.seen.append(Seen(self.command, self.path, headers, body))
                route = server.routes.get(self.path, Route(status=404, body=b"not found"))
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                try:
                    if route.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for start in range(0, len(route.body), 4096):
                            piece = route.body[start : start + 4096]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(route.body)))
                        self.end_headers()
                        self.wfile.write(route.body)
                except OSError:
                    return  # the client stopped reading an oversize body, as it should

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def redirect(self, path: str, status: int, location: str) -> str:
        self.routes[path] = Route(status=status, headers={"Location": location}, body=b"")
        return self.base + path

    def __enter__(self) -> ApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with ApiServer() as server:
        yield server


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Fake name resolution for the names it holds (name -> addresses); others resolve for real."""
    answers: dict[str, list[str]] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return await real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return answers


def api_hosts(*patterns: str) -> HostPolicy:
    """The policy an API tool builds from `scopes.api_hosts`."""
    scopes = DataScopes(api_hosts=patterns)
    return HostPolicy(
        allows=scopes.allows_api_host,
        names=scopes.names_api_host,
        kind="API hosts",
        setting="scopes.api_hosts in policy.yaml",
        verb="call",
        done="called",
        noun="APIs",
    )


ANYTHING = HostPolicy(
    allows=lambda host, port: True,
    names=lambda host, port: True,
    kind="API hosts",
    setting="scopes.api_hosts in policy.yaml",
    verb="call",
    done="called",
    noun="APIs",
)
LOOPBACK = api_hosts("127.0.0.1:*")


async def call(
    method: str, url: str, *, policy: HostPolicy = LOOPBACK, **options: Any
) -> GuardedResponse:
    options.setdefault("max_bytes", 64 * 1024)
    options.setdefault("time_limit", 5.0)
    return await guarded_request(method, url, policy=policy, **options)


# --- private addresses and names -----------------------------------------------------------------


async def test_private_address_is_refused_unless_the_policy_lists_it(api: ApiServer) -> None:
    api.routes["/v1"] = Route(body=b"inside")

    with pytest.raises(NetworkRefused) as caught:
        await call("GET", f"{api.base}/v1", policy=api_hosts("*"))
    response = await call("GET", f"{api.base}/v1", policy=api_hosts(f"127.0.0.1:{api.port}"))

    assert str(caught.value) == (
        f"refusing to call {api.base}/v1: 127.0.0.1 is not among the API hosts the policy allows "
        "(scopes.api_hosts in policy.yaml; private and loopback addresses must be listed by name)"
    )
    assert (response.status, response.body) == (200, b"inside")
    assert len(api.seen) == 1


async def test_name_resolving_to_loopback_is_refused_unless_named(
    api: ApiServer, dns: dict[str, list[str]]
) -> None:
    dns["api.invalid"] = ["93.184.215.14", "127.0.0.1"]
    api.routes["/v1"] = Route(body=b"inside")
    url = f"http://api.invalid:{api.port}/v1"

    with pytest.raises(NetworkRefused, match=r"resolves to a private address \(127\.0\.0\.1\)"):
        await call("GET", url, policy=api_hosts("*", "api.*"))
    assert api.seen == []

    dns["api.invalid"] = ["127.0.0.1"]
    response = await call("GET", url, policy=api_hosts("api.invalid"))

    assert response.body == b"inside"
    assert api.seen[0].headers["host"] == f"api.invalid:{api.port}"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://Metadata/computeMetadata/v1/",
    ],
)
async def test_metadata_endpoints_are_refused_even_when_listed(url: str) -> None:
    with pytest.raises(NetworkRefused, match="cloud metadata endpoint") as caught:
        await call("GET", url, policy=ANYTHING)

    assert "refused even when the policy lists it" in str(caught.value)


async def test_name_resolving_to_a_metadata_address_is_refused(
    dns: dict[str, list[str]],
) -> None:
    dns["creds.invalid"] = ["169.254.169.254"]

    with pytest.raises(NetworkRefused, match=r"resolves to 169\.254\.169\.254, which is a cloud"):
        await call("GET", "http://creds.invalid/", policy=ANYTHING)


async def test_redirect_to_the_metadata_address_is_refused(api: ApiServer) -> None:
    url = api.redirect("/go", 302, "http://169.254.169.254/latest/meta-data/iam/")

    with pytest.raises(NetworkRefused) as caught:
        await call("GET", url, policy=ANYTHING)

    assert str(caught.value).startswith(
        "refusing to call http://169.254.169.254/latest/meta-data/iam/ "
        f"(redirected from {url}): 169.254.169.254 is a cloud metadata endpoint"
    )


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/x"])
async def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(NetworkRefused, match="only http:// and https:// APIs can be called"):
        await call("GET", url, policy=ANYTHING)


# --- methods and bodies --------------------------------------------------------------------------


async def test_post_with_json_body_returns_status_headers_and_body(api: ApiServer) -> None:
    api.routes["/items"] = Route(
        status=201,
        headers={"Content-Type": "application/json; charset=utf-8", "X-Id": "7"},
        body=b'{"id": 7}',
    )

    response = await call(
        "POST", f"{api.base}/items", json={"name": "茶"}, headers={"X-Api-Key": "k"}
    )

    assert (response.status, response.reason, response.body) == (201, "Created", b'{"id": 7}')
    assert (response.media_type, response.charset) == ("application/json", "utf-8")
    assert response.headers["x-id"] == "7"
    assert response.url == f"{api.base}/items"
    [seen] = api.seen
    assert (seen.method, json.loads(seen.body)) == ("POST", {"name": "茶"})
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-api-key"] == "k"


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_post_redirected_by_301_302_or_303_continues_as_get_without_body(
    api: ApiServer, status: int
) -> None:
    url = api.redirect("/submit", status, "/result")
    api.routes["/result"] = Route(body=b"done")

    response = await call("POST", url, content=b"a=1", headers={"Content-Type": "text/plain"})

    assert response.body == b"done"
    first, then = api.seen
    assert (first.method, first.body) == ("POST", b"a=1")
    assert (then.method, then.body, then.path) == ("GET", b"", "/result")
    assert "content-type" not in then.headers


async def test_put_redirected_by_307_on_the_same_host_keeps_method_and_body(
    api: ApiServer,
) -> None:
    url = api.redirect("/old", 307, "/new")
    api.routes["/new"] = Route(status=204, body=b"")

    response = await call("PUT", url, content=b"payload")

    assert response.status == 204
    assert [(s.method, s.path, s.body) for s in api.seen] == [
        ("PUT", "/old", b"payload"),
        ("PUT", "/new", b"payload"),
    ]


async def test_post_redirected_by_308_to_another_host_is_refused(api: ApiServer) -> None:
    url = api.redirect("/old", 308, f"http://localhost:{api.port}/new")

    with pytest.raises(NetworkRefused, match="re-send the request body to another host"):
        await call("POST", url, content=b"secret", policy=api_hosts("127.0.0.1", "localhost"))

    assert [s.path for s in api.seen] == ["/old"]


async def test_credentials_are_dropped_when_a_redirect_leaves_the_origin(api: ApiServer) -> None:
    url = api.redirect("/me", 302, f"http://localhost:{api.port}/elsewhere")
    api.routes["/elsewhere"] = Route(body=b"there")

    await call(
        "GET",
        url,
        headers={"Authorization": "Bearer t", "Cookie": "s=1", "X-Trace": "1"},
        policy=api_hosts("127.0.0.1", "localhost"),
    )

    first, then = api.seen
    assert first.headers["authorization"] == "Bearer t"
    assert "authorization" not in then.headers and "cookie" not in then.headers
    assert then.headers["x-trace"] == "1"


async def test_same_host_refuses_a_redirect_to_another_host(api: ApiServer) -> None:
    url = api.redirect("/out", 302, f"http://localhost:{api.port}/page")
    api.routes["/page"] = Route(body=b"page")
    policy = api_hosts("127.0.0.1", "localhost")

    with pytest.raises(NetworkRefused, match="another host; after reading untrusted content"):
        await call("GET", url, policy=policy, same_host=True)
    assert [s.path for s in api.seen] == ["/out"]

    assert (await call("GET", url, policy=policy)).body == b"page"


async def test_redirect_loop_stops_after_max_redirects(api: ApiServer) -> None:
    url = api.redirect("/loop", 302, "/loop")

    with pytest.raises(NetworkRefused, match="redirects more than 2 times"):
        await call("GET", url, max_redirects=2)

    assert len(api.seen) == 3


# --- what comes back -----------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_cap_is_refused(api: ApiServer, chunked: bool) -> None:
    api.routes["/big"] = Route(body=b"a" * 20_000, chunked=chunked)

    with pytest.raises(ResponseTooLarge) as caught:
        await call("GET", f"{api.base}/big", max_bytes=10_000)

    assert str(caught.value) == f"{api.base}/big: response larger than 10000 bytes; not read"
    assert caught.value.limit == 10_000


async def test_inspect_can_refuse_before_the_body_is_read(api: ApiServer) -> None:
    api.routes["/img"] = Route(headers={"Content-Type": "image/png"}, body=b"\x89PNG" * 10_000)
    heads: list[ResponseHead] = []

    def refuse(head: ResponseHead) -> None:
        heads.append(head)
        raise ValueError(head.media_type)

    with pytest.raises(ValueError, match="image/png"):
        await call("GET", f"{api.base}/img", max_bytes=100, inspect=refuse)

    assert [(h.status, h.url) for h in heads] == [(200, f"{api.base}/img")]


async def test_refused_connection_is_a_connect_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}/"

    with pytest.raises(ConnectFailed) as caught:
        await call("GET", url)

    assert str(caught.value) == f"calling {url} failed (connection refused)"
