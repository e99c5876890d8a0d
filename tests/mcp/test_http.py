"""MCP tools from a real streamable HTTP server on 127.0.0.1: bearer secret, refusals, crashes."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from automation.mcp.config import McpServerConfig
from automation.mcp.hub import McpHub
from automation.tools.base import RiskLevel, ToolContext, ToolError
from tests.conftest import free_port
from tests.mcp.conftest import OWNER, TOKEN, HttpMcpServer, by_name, resolver, stdio_config


def http_config(server: HttpMcpServer, **extra: object) -> McpServerConfig:
    return McpServerConfig.model_validate(
        {"name": "remote", "url": server.url, "bearer_secret": "mcp_token", **extra}
    )


async def test_tools_over_http_carry_the_owners_secret_and_never_log_it(
    http_server: HttpMcpServer, ctx: ToolContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hub = McpHub(
        [http_config(http_server, tool_risks={"add": "read"})],
        resolve_secret=resolver,
        owner_user_id=OWNER,
    )
    try:
        assert await hub.start() == []
        tools = by_name(hub)
        assert tools["remote_add"].source == "mcp:remote"
        assert tools["remote_add"].risk is RiskLevel.READ
        assert tools["remote_peek"].risk is RiskLevel.READ
        # ctx.user_id is 1, not the owner: the shared connection uses the owner's secret.
        assert await tools["remote_add"].call({"a": 20, "b": 22}, ctx) == "42"
        assert await tools["remote_echo"].call({"text": "héllo"}, ctx) == "héllo"
        with pytest.raises(ToolError, match="the fail tool always fails"):
            await tools["remote_fail"].call({}, ctx)
        status = hub.status()["remote"]
        assert status["connected"] is True and status["transport"] == "http"
    finally:
        await hub.close()
    assert TOKEN not in caplog.text
    assert TOKEN not in str(hub.status())


async def test_a_wrong_secret_is_reported_without_the_secret(
    http_server: HttpMcpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-value-123"

    async def wrong_secret(user_id: int, name: str) -> str:
        return wrong

    hub = McpHub([http_config(http_server)], resolve_secret=wrong_secret, owner_user_id=OWNER)
    try:
        errors = await hub.start()
    finally:
        await hub.close()
    assert errors == [
        f"MCP server 'remote': {http_server.url} answered HTTP 401; "
        "check the secret named by `bearer_secret`"
    ]
    assert wrong not in caplog.text and hub.tools() == []


async def test_an_unset_secret_says_how_to_set_it(http_server: HttpMcpServer) -> None:
    hub = McpHub(
        [http_config(http_server, bearer_secret="other_token")],
        resolve_secret=resolver,
        owner_user_id=OWNER,
    )
    try:
        assert await hub.start() == [
            "MCP server 'remote': secret other_token is not set; "
            "run: dadang secrets set other_token"
        ]
    finally:
        await hub.close()


async def test_a_refused_url_is_reported_and_the_others_still_work(ctx: ToolContext) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    hub = McpHub([McpServerConfig(name="down", url=url), stdio_config("local")])
    try:
        errors = await hub.start()
        assert len(errors) == 1 and errors[0].startswith(f"MCP server 'down': cannot reach {url}")
        assert await by_name(hub)["local_add"].call({"a": 1, "b": 2}, ctx) == "3"
        assert {tool.source for tool in hub.tools()} == {"mcp:local"}
    finally:
        await hub.close()


async def test_a_server_crash_fails_the_call_fast_and_the_hub_reconnects(
    http_server: HttpMcpServer, ctx: ToolContext
) -> None:
    hub = McpHub(
        [http_config(http_server, timeout=20.0)], resolve_secret=resolver, owner_user_id=OWNER
    )
    try:
        assert await hub.start() == []
        tools = by_name(hub)
        started = time.monotonic()
        with pytest.raises(ToolError, match="stopped during the call; it is being restarted"):
            await tools["remote_crash"].call({}, ctx)
        assert time.monotonic() - started < 2.0
        await asyncio.to_thread(http_server.process.wait, 10)  # type: ignore[union-attr]
        await asyncio.to_thread(http_server.start)  # the same URL comes back
        deadline = time.monotonic() + 15
        while not hub.status()["remote"]["connected"]:
            assert time.monotonic() < deadline, hub.status()
            await asyncio.sleep(0.1)
        assert await tools["remote_add"].call({"a": 5, "b": 6}, ctx) == "11"
        assert hub.status()["remote"]["restarts"] >= 1
    finally:
        await hub.close()
