"""MCP tools from a real server subprocess over stdio: listing, calls, errors, timeouts, crashes."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from automation.mcp.hub import McpHub
from automation.tools.base import RiskLevel, ToolContext, ToolError
from tests.mcp.conftest import by_name, stdio_config


async def wait_connected(hub: McpHub, name: str, *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not hub.status()[name]["connected"]:
        assert time.monotonic() < deadline, hub.status()
        await asyncio.sleep(0.05)


async def test_tools_are_named_sourced_and_risked_as_configured() -> None:
    hub = McpHub(
        [
            stdio_config(
                "docs-srv",
                risk=RiskLevel.WRITE,
                tool_risks={"echo": RiskLevel.READ, "wipe": RiskLevel.EXTERNAL_SEND},
                exclude=["crash", "big"],
            ),
            stdio_config("plain", include=["add", "peek", "wipe", "Get-Item.v2"]),
        ]
    )
    try:
        assert await hub.start() == []
        tools = by_name(hub)
    finally:
        await hub.close()
    assert "docs_srv_crash" not in tools and "docs_srv_big" not in tools
    assert {name for name in tools if name.startswith("plain_")} == {
        "plain_add",
        "plain_peek",
        "plain_wipe",
        "plain_get_item_v2",
    }
    assert tools["docs_srv_echo"].risk is RiskLevel.READ  # per tool wins
    assert tools["docs_srv_wipe"].risk is RiskLevel.EXTERNAL_SEND
    assert tools["docs_srv_peek"].risk is RiskLevel.WRITE  # server-wide wins over the hint
    # Without configuration the server's hints decide, else the risk stays undeclared.
    assert tools["plain_peek"].risk is RiskLevel.READ
    assert tools["plain_wipe"].risk is RiskLevel.IRREVERSIBLE
    assert tools["plain_add"].risk is None
    assert {tool.source for tool in tools.values()} == {"mcp:docs-srv", "mcp:plain"}
    assert all(tool.untrusted_output for tool in tools.values())
    assert hub.status()["plain"]["tools"] == 4


async def test_the_model_sees_the_servers_schema_compacted(stdio_hub: McpHub) -> None:
    schema = by_name(stdio_hub)["test_add"].schema()
    assert schema == {
        "type": "function",
        "function": {
            "name": "test_add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    }


async def test_calls_return_the_servers_text(stdio_hub: McpHub, ctx: ToolContext) -> None:
    tools = by_name(stdio_hub)
    assert await tools["test_add"].call({"a": 2, "b": 40}, ctx) == "42"
    assert await tools["test_get_item_v2"].call({"item_id": "x7"}, ctx) == "item x7"
    assert await tools["test_picture"].call({}, ctx) == "a pixel\n[image image/png, 66 bytes]"
    long = await tools["test_big"].call({"chars": 20000}, ctx)
    assert len(long) == 8000 and long.endswith("… (truncated)")


async def test_two_calls_run_at_the_same_time(stdio_hub: McpHub, ctx: ToolContext) -> None:
    tools = by_name(stdio_hub)
    started = time.monotonic()
    slow, fast = await asyncio.gather(
        tools["test_slow"].call({"seconds": 0.5}, ctx),
        tools["test_add"].call({"a": 1, "b": 1}, ctx),
    )
    assert (slow, fast) == ("slept 0.5", "2")
    assert time.monotonic() - started < 1.5


async def test_wrong_arguments_are_explained_without_asking_the_server(
    stdio_hub: McpHub, ctx: ToolContext
) -> None:
    with pytest.raises(ToolError) as caught:
        await by_name(stdio_hub)["test_add"].call({"a": "two"}, ctx)
    message = str(caught.value)
    assert message.startswith("invalid arguments for test_add:")
    assert "'b' is a required property" in message
    assert "a: 'two' is not of type 'integer'" in message


async def test_an_error_result_is_a_tool_error_with_the_servers_text(
    stdio_hub: McpHub, ctx: ToolContext
) -> None:
    with pytest.raises(ToolError, match="the fail tool always fails"):
        await by_name(stdio_hub)["test_fail"].call({}, ctx)


async def test_a_slow_call_times_out_and_the_server_keeps_working(
    stdio_hub: McpHub, ctx: ToolContext
) -> None:
    tools = by_name(stdio_hub)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"did not answer within 2 s"):
        await tools["test_slow"].call({"seconds": 30}, ctx)
    assert time.monotonic() - started < 3.0
    assert await tools["test_add"].call({"a": 1, "b": 2}, ctx) == "3"


async def test_a_cancelled_turn_cancels_the_call_and_the_server_keeps_working(
    stdio_hub: McpHub, ctx: ToolContext
) -> None:
    tools = by_name(stdio_hub)
    waiting = asyncio.create_task(tools["test_slow"].call({"seconds": 30}, ctx))
    await asyncio.sleep(0.3)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await tools["test_add"].call({"a": 1, "b": 2}, ctx) == "3"
    assert stdio_hub.status()["test"]["connected"] is True


async def test_a_crash_fails_the_call_fast_and_the_server_is_restarted(
    stdio_hub: McpHub, ctx: ToolContext
) -> None:
    tools = by_name(stdio_hub)
    first_pid = await tools["test_pid"].call({}, ctx)
    started = time.monotonic()
    with pytest.raises(ToolError, match="stopped during the call; it is being restarted"):
        await tools["test_crash"].call({}, ctx)
    assert time.monotonic() - started < 1.0
    assert stdio_hub.status()["test"]["connected"] is False
    await wait_connected(stdio_hub, "test")
    assert await tools["test_add"].call({"a": 3, "b": 4}, ctx) == "7"
    assert await tools["test_pid"].call({}, ctx) != first_pid
    status = stdio_hub.status()["test"]
    assert status["restarts"] == 1 and status["last_error"] == "MCP server 'test' stopped"


async def test_a_call_during_the_restart_waits_for_the_server(
    stdio_hub: McpHub, ctx: ToolContext
) -> None:
    tools = by_name(stdio_hub)
    with pytest.raises(ToolError):
        await tools["test_crash"].call({}, ctx)
    assert await tools["test_echo"].call({"text": "back"}, ctx) == "back"  # restart takes ~1.5 s


async def test_a_missing_command_is_reported_and_the_others_still_work(
    ctx: ToolContext,
) -> None:
    hub = McpHub([stdio_config("good"), stdio_config("gone", command=["/nonexistent/mcp-srv"])])
    try:
        errors = await hub.start()
        assert errors == [
            "MCP server 'gone': command '/nonexistent/mcp-srv' was not found; "
            "check the [[mcp_servers]] table in dadang.toml"
        ]
        assert await by_name(hub)["good_add"].call({"a": 1, "b": 1}, ctx) == "2"
        assert not any(tool.source == "mcp:gone" for tool in hub.tools())
        assert hub.status()["gone"]["connected"] is False
    finally:
        await hub.close()


async def test_a_server_that_never_answers_times_out_at_startup(tmp_path: Path) -> None:
    mute = tmp_path / "mute.py"
    mute.write_text("import time\ntime.sleep(60)\n")
    hub = McpHub([stdio_config("mute", command=[sys.executable, str(mute)], startup_timeout=1.0)])
    started = time.monotonic()
    try:
        assert await hub.start() == [
            "MCP server 'mute' did not start within 1 s (`startup_timeout` in dadang.toml)"
        ]
    finally:
        await hub.close()
    assert time.monotonic() - started < 8.0  # 1 s, then stdin closed, SIGTERM after 2 s
    assert hub.tools() == []


async def test_close_leaves_no_process_or_task_behind(ctx: ToolContext) -> None:
    hub = McpHub([stdio_config()])
    assert await hub.start() == []
    pid = int(await by_name(hub)["test_pid"].call({}, ctx))
    assert Path(f"/proc/{pid}").exists()
    await hub.close()
    deadline = time.monotonic() + 2
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"MCP server {pid} still running"
        await asyncio.sleep(0.05)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp:")]
    with pytest.raises(ToolError, match="not running"):
        await by_name(hub)["test_add"].call({"a": 1, "b": 1}, ctx)
    await hub.close()  # twice is fine


async def test_close_during_a_restart_is_prompt(stdio_hub: McpHub, ctx: ToolContext) -> None:
    with pytest.raises(ToolError):
        await by_name(stdio_hub)["test_crash"].call({}, ctx)
    started = time.monotonic()
    await stdio_hub.close()
    assert time.monotonic() - started < 1.0
