"""Bad answers from an API become clear tool errors (or bounded text), never a stuck turn:
a 50 MB body, HTML instead of JSON, an endpoint that hangs, a redirect to the metadata address,
a name that resolves to loopback without being allowed, a 429 that asks to wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from automation.tools.base import ToolError
from automation.tools.scopes import DataScopes
from memory.db import Database
from tests.fakes.server import ThreadedServer
from tests.http_tools.test_http_tools import context, db, load_one

__all__ = ["db"]  # the fixture, shared with test_http_tools

CALLS: dict[str, int] = {}


async def huge(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        chunk = b"x" * (1024 * 1024)
        for _ in range(50):
            yield chunk

    return StreamingResponse(body(), media_type="application/json")


async def html(request: Request) -> Response:
    page = "<html><body>" + "<p>维护中 maintenance</p>" * 2000 + "</body></html>"
    return Response(page, media_type="text/html")


async def hang(request: Request) -> Response:
    await asyncio.sleep(30)
    return Response("late")


async def to_metadata(request: Request) -> RedirectResponse:
    return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)


async def busy(request: Request) -> Response:
    CALLS["busy"] = CALLS.get("busy", 0) + 1
    if CALLS["busy"] == 1:
        return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "1"})
    return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
def api() -> Iterator[ThreadedServer]:
    app = Starlette(
        routes=[
            Route("/huge", huge),
            Route("/html", html),
            Route("/hang", hang),
            Route("/meta", to_metadata),
            Route("/busy", busy),
        ]
    )
    server = ThreadedServer(app, name="bad-api")
    server.start()
    yield server
    server.stop()


def spec(url: str, *, timeout: float = 15) -> str:
    return f"name: bad_api\ndescription: A bad API.\nmethod: GET\nurl: {url}\ntimeout: {timeout}\n"


def scopes(server: ThreadedServer) -> DataScopes:
    return DataScopes(api_hosts=(f"127.0.0.1:{server.port}",))


async def test_a_50_mb_answer_is_refused_without_reading_it_all(
    tmp_path: Path, db: Database, api: ThreadedServer
) -> None:
    tool = load_one(tmp_path, spec(f"{api.base}/huge"))
    with pytest.raises(ToolError, match=r"larger than|too large|2 MB"):
        await tool.call({}, context(db, scopes(api)))


async def test_html_instead_of_json_comes_back_as_bounded_text(
    tmp_path: Path, db: Database, api: ThreadedServer
) -> None:
    tool = load_one(tmp_path, spec(f"{api.base}/html"))
    result = await tool.call({}, context(db, scopes(api)))
    assert "维护中" in result
    assert len(result) <= 4200  # response.max_chars (4000) plus the truncation note


async def test_an_endpoint_that_hangs_is_a_timeout_error_within_the_tool_timeout(
    tmp_path: Path, db: Database, api: ThreadedServer
) -> None:
    tool = load_one(tmp_path, spec(f"{api.base}/hang", timeout=0.5))
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"did not answer|timed out|within"):
        await tool.call({}, context(db, scopes(api)))
    assert time.monotonic() - started < 3


async def test_a_redirect_to_the_metadata_address_is_refused(
    tmp_path: Path, db: Database, api: ThreadedServer
) -> None:
    tool = load_one(tmp_path, spec(f"{api.base}/meta"))
    with pytest.raises(ToolError, match="metadata"):
        await tool.call({}, context(db, scopes(api)))


async def test_a_name_resolving_to_loopback_is_refused_unless_named(
    tmp_path: Path, db: Database, api: ThreadedServer
) -> None:
    tool = load_one(tmp_path, spec(f"http://localhost:{api.port}/busy"))
    with pytest.raises(ToolError, match=r"localhost"):
        await tool.call({}, context(db, DataScopes(api_hosts=("*",))))


async def test_a_429_with_retry_after_is_retried_for_a_get(
    tmp_path: Path, db: Database, api: ThreadedServer
) -> None:
    CALLS.clear()
    tool = load_one(tmp_path, spec(f"{api.base}/busy"))
    result = await tool.call({}, context(db, scopes(api)))
    assert "ok" in result and "slow down" not in result
    assert CALLS["busy"] == 2
