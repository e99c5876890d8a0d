"""Multi-step requests: the plan is shown and edited in place, steps and time are bounded, a
hanging tool is stopped, and tools reaching the owner's systems are per user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from memory.audit import AuditLog
from memory.tool_access import ToolAccess
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.server import ThreadedServer
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 5005
FRIEND = 6006


@pytest.fixture
def slow_api() -> Iterator[ThreadedServer]:
    """`/rooms` answers at once; `/hang` never does (within any test's patience)."""

    async def rooms(request: Request) -> JSONResponse:
        return JSONResponse({"rooms": [{"id": "room-1", "name": "黄山"}]})

    async def hang(request: Request) -> JSONResponse:
        await asyncio.sleep(30)
        return JSONResponse({})

    server = ThreadedServer(
        Starlette(routes=[Route("/rooms", rooms), Route("/hang", hang)]), name="slow-api"
    )
    server.start()
    yield server
    server.stop()


def write_tools(home: Path, base: str) -> None:
    (home / "tools").mkdir(parents=True, exist_ok=True)
    (home / "tools" / "office.yaml").write_text(
        f"""tools:
  - name: office_rooms
    description: List meeting rooms.
    method: GET
    url: {base}/rooms
  - name: office_hang
    description: An endpoint that never answers.
    method: GET
    url: {base}/hang
    timeout: 60
""",
        encoding="utf-8",
    )
    host = base.removeprefix("http://")
    (home / "policy.yaml").write_text(f'scopes:\n  api_hosts: ["{host}"]\n', encoding="utf-8")


async def start(home: Path, llm: FakeVLLM, tg: FakeTelegram, factory: Any, **extra: Any) -> Service:
    settings = make_settings(home, llm=llm, tg=tg, telegram_allowed_users=[OWNER, FRIEND], **extra)
    svc: Service = await factory(settings)
    return svc


def tool_names(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


async def test_a_plan_is_posted_once_then_edited_in_place_and_the_report_follows(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    steps = [{"title": "查看时间"}, {"title": "写报告"}]
    fake_llm.push(
        vllm.tool_calls([("task_plan", {"steps": steps})]),
        vllm.tool_calls(
            [
                ("current_time", {}),
                (
                    "task_plan",
                    {"steps": [{"title": "查看时间", "status": "done", "note": "10:00"}, steps[1]]},
                ),
            ]
        ),
        vllm.text("完成：现在是 10:00。"),
    )
    fake_tg.push_message(OWNER, "先查时间再写报告")
    sent = await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    assert sent[0]["text"].splitlines() == ["计划（0/2）", "▫️ 1. 查看时间", "▫️ 2. 写报告"]
    assert sent[1]["text"] == "完成：现在是 10:00。"
    edits = fake_tg.sent_to(OWNER, method="editMessageText")
    assert len(edits) == 1 and edits[0]["message_id"] == sent[0]["message_id"]
    assert edits[0]["text"].splitlines()[:2] == ["计划（1/2）", "✅ 1. 查看时间 — 10:00"]
    plan_result = next(m for m in fake_llm.requests[1]["messages"] if m["role"] == "tool")
    assert "Plan shown to the user (2 pending)" in plan_result["content"]
    system = fake_llm.requests[0]["messages"][0]["content"]
    assert "task_plan" in system
    assert svc.runtime.stores.db is not None


async def test_the_step_budget_ends_with_a_report_request_and_no_tools(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    await start(clean_environ, fake_llm, fake_tg, service_factory, max_tool_steps=2)
    fake_llm.push(
        vllm.tool_calls([("current_time", {})]),
        vllm.tool_calls([("current_time", {})]),
        vllm.text("Did two of three steps; the third is left."),
    )
    fake_tg.push_message(OWNER, "do three things")
    reply = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage"))[-1]
    assert reply["text"] == "Did two of three steps; the third is left."
    last = fake_llm.requests[-1]
    assert "tools" not in last or not last["tools"]
    note = last["messages"][-1]
    assert note["role"] == "system" and "limit of 2 tool rounds" in note["content"]
    assert "what was not done" in note["content"]


async def test_the_time_budget_counts_work_and_asks_for_partial_results(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    await start(clean_environ, fake_llm, fake_tg, service_factory, turn_time_budget=0.5)
    fake_llm.push(
        vllm.hang(0.7, then=vllm.tool_calls([("current_time", {})])),
        vllm.text("Partial: I only got the time."),
    )
    fake_tg.push_message(OWNER, "a long task")
    reply = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage"))[-1]
    assert reply["text"] == "Partial: I only got the time."
    assert len(fake_llm.requests) == 2
    note = fake_llm.requests[-1]["messages"][-1]
    assert "time budget of 0 s" in note["content"] or "time budget" in note["content"]
    assert not fake_llm.requests[-1].get("tools")


async def test_a_hanging_endpoint_is_stopped_and_the_turn_goes_on(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    slow_api: ThreadedServer,
) -> None:
    write_tools(clean_environ, slow_api.base)
    await start(clean_environ, fake_llm, fake_tg, service_factory, tool_timeout=0.5)
    fake_llm.push(
        vllm.tool_calls([("office_hang", {}), ("office_rooms", {})]),
        vllm.text("The export endpoint did not answer; rooms: 黄山."),
    )
    fake_tg.push_message(OWNER, "rooms please")
    reply = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage"))[-1]
    assert reply["text"].startswith("The export endpoint did not answer")
    results = [m["content"] for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "did not finish within 0 s" in results[0] or "did not finish within" in results[0]
    assert "its effect is unknown" in results[0]
    assert "黄山" in results[1]


async def test_owner_api_tools_are_off_for_other_users_until_enabled(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    slow_api: ThreadedServer,
) -> None:
    write_tools(clean_environ, slow_api.base)
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    fake_llm.push(vllm.text("owner ok"))
    fake_tg.push_message(OWNER, "hi")
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage")
    assert {"office_rooms", "office_hang", "task_plan"} <= set(tool_names(fake_llm.requests[-1]))
    names = tool_names(fake_llm.requests[-1])
    assert names == sorted(names)

    fake_llm.push(vllm.tool_calls([("office_rooms", {})]), vllm.text("I cannot."))
    fake_tg.push_message(FRIEND, "list the rooms")
    await fake_tg.wait_sent(chat_id=FRIEND, method="sendMessage")
    assert "office_rooms" not in tool_names(fake_llm.requests[-2])
    refused = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "not enabled for this user" in refused["content"]
    assert "黄山" not in refused["content"]

    friend = await svc.runtime.stores.identities.user_for("telegram", str(FRIEND))
    assert friend is not None
    db = svc.runtime.stores.db
    await ToolAccess(db, AuditLog(db)).set(friend, "office_*", enabled=True)
    fake_llm.push(vllm.tool_calls([("office_rooms", {})]), vllm.text("Rooms: 黄山"))
    fake_tg.push_message(FRIEND, "list the rooms again")
    reply = (await fake_tg.wait_sent(chat_id=FRIEND, method="sendMessage", count=2))[-1]
    assert reply["text"] == "Rooms: 黄山"
    assert "office_rooms" in tool_names(fake_llm.requests[-2])
    result = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "黄山" in result["content"] and json.loads  # the API answered
    rows = [r for r in await AuditLog(db).entries(limit=None) if r.action == "tool_enabled"]
    assert [(r.user_id, r.target) for r in rows] == [(friend, "office_*")]


async def test_a_corrected_table_in_the_same_request_is_sent_as_a_new_version(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    await start(clean_environ, fake_llm, fake_tg, service_factory)

    def write(rows: list[list[str]]) -> Any:
        args = {"header": ["问题", "负责人"], "rows": rows, "file_name": "行动项"}
        return vllm.tool_calls([("table_write", args)])

    fake_llm.push(
        write([["登录超时", "前端"]]),
        write([["登录超时", "前端组"], ["发票导出慢", "后端组"]]),  # the model fixes its table
        vllm.text("Sent the corrected list."),
    )
    fake_tg.push_message(OWNER, "把行动项做成 Excel 发我")
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage")
    documents = fake_tg.sent_to(OWNER, method="sendDocument")
    assert [d["document"]["filename"] for d in documents] == ["行动项.xlsx", "行动项 (2).xlsx"]
    results = [m["content"] for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "行动项 (2).xlsx" in results[-1] and "2 rows" in results[-1]
