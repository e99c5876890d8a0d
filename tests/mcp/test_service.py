"""MCP tools inside the running service: registered at start, under the policy and the audit,
and a server that crashes mid-call costs one error message, not the turn."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from memory.audit import AuditLog
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.mcp.conftest import SERVER

OWNER = 8118


async def start(home: Path, llm: FakeVLLM, tg: FakeTelegram, factory: Any) -> Service:
    servers = [
        {
            "name": "calc",
            "command": [sys.executable, str(SERVER), "stdio"],
            "tool_risks": {"add": "read", "crash": "read"},
        },
        {"name": "broken", "command": [str(home / "no-such-program")]},
    ]
    settings = make_settings(
        home, llm=llm, tg=tg, telegram_allowed_users=[OWNER], mcp_servers=servers
    )
    svc: Service = await factory(settings)
    return svc


async def test_mcp_tools_run_in_a_turn_and_a_crash_mid_call_is_reported_not_fatal(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    tools = svc.runtime.tools
    assert tools.get("calc_add") is not None and tools.get("calc_add").source == "mcp:calc"  # type: ignore[union-attr]
    assert any(p.startswith("broken") or "broken" in p for p in tools.problems)

    fake_llm.push(vllm.tool_calls([("calc_add", {"a": 2, "b": 40})]), vllm.text("42"))
    fake_tg.push_message(OWNER, "2+40?")
    assert (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage"))[-1]["text"] == "42"
    first = fake_llm.requests[0]
    assert "calc_add" in [t["function"]["name"] for t in first["tools"]]
    result = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "42" in result["content"] and 'trust="untrusted"' in result["content"]

    fake_llm.push(vllm.tool_calls([("calc_crash", {})]), vllm.text("The calculator crashed."))
    fake_tg.push_message(OWNER, "crash it")
    sent = await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    assert sent[-1]["text"] == "The calculator crashed."
    crashed = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "stopped during the call" in crashed["content"]

    # The hub restarts the server; the next request works again.
    fake_llm.push(vllm.tool_calls([("calc_add", {"a": 1, "b": 1})]), vllm.text("2"))
    fake_tg.push_message(OWNER, "1+1?")
    sent = await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=3)
    assert sent[-1]["text"] == "2"
    again = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "2" in again["content"] and "Error" not in again["content"]

    rows = [
        r
        for r in await AuditLog(svc.runtime.stores.db).entries(limit=None)
        if r.action == "tool_call"
    ]
    assert [(r.target, r.detail["ran"]) for r in rows] == [
        ("calc_add", True),
        ("calc_crash", True),
        ("calc_add", True),
    ]
    assert [r.detail["ok"] for r in rows] == [True, False, True]


def test_tools_list_connects_to_mcp_servers_and_names_the_one_that_fails(
    clean_environ: Path,
) -> None:
    from typer.testing import CliRunner

    from agent.cli.main import app

    clean_environ.mkdir(parents=True, exist_ok=True)
    (clean_environ / "dadang.toml").write_text(
        "[[mcp_servers]]\n"
        'name = "calc"\n'
        f'command = [{str(sys.executable)!r}, {str(SERVER)!r}, "stdio"]\n'
        'risk = "read"\n\n'
        "[[mcp_servers]]\n"
        'name = "gone"\n'
        f"command = [{str(clean_environ / 'missing')!r}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["tools", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["calc_add"]["source"] == "mcp:calc"
    assert rows["calc_add"]["risk"] == "read" and rows["calc_add"]["untrusted_output"] is True
    assert "gone" in result.stderr and "not loaded" in result.stderr
