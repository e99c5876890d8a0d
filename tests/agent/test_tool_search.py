"""Many API tools: past the tool budget they are left out of the prompt, found with
`tool_search`, and listed (and callable) from the next step of the same turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from automation.http_tools import HttpToolSpec, build_tool
from automation.tools import ToolRegistry
from automation.tools.tool_search import DeferredCatalog
from memory.audit import AuditLog
from memory.tool_access import ToolAccess
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.server import ThreadedServer
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 5005
FRIEND = 6006
FILLERS = 58


@dataclass
class OfficeApi:
    base: str
    requests: list[str] = field(default_factory=list)
    """Paths the API answered."""


@pytest.fixture
def office_api() -> Iterator[OfficeApi]:
    """An office API on loopback that records the requests it answers."""
    api = OfficeApi(base="")

    async def rooms(request: Request) -> JSONResponse:
        api.requests.append(request.url.path)
        city = request.query_params.get("city", "")
        return JSONResponse({"city": city, "rooms": [{"id": "r-7", "name": "西湖厅"}]})

    async def record(request: Request) -> JSONResponse:
        api.requests.append(request.url.path)
        return JSONResponse({"record": request.path_params["n"]})

    routes = [Route("/rooms", rooms), Route("/records/{n}", record)]
    server = ThreadedServer(Starlette(routes=routes), name="office-api")
    server.start()
    api.base = server.base
    yield api
    server.stop()


def write_tools(home: Path, base: str) -> None:
    """Sixty GET tools in one file: two distinctive ones and 58 CRM fillers."""
    tools: list[dict[str, Any]] = [
        {
            "name": "office_rooms_find",
            "description": "Find free meeting rooms. 查找空闲会议室。",
            "method": "GET",
            "url": f"{base}/rooms",
            "parameters": [{"name": "city", "in": "query", "description": "City name"}],
        },
        {
            "name": "office_invoice_list",
            "description": "List unpaid invoices of a customer.",
            "method": "GET",
            "url": f"{base}/records/invoices",
            "parameters": [{"name": "customer_id", "in": "query"}],
        },
    ]
    for i in range(FILLERS):
        tools.append(
            {
                "name": f"crm_record_{i:02d}",
                "description": f"Read CRM record set {i}: fields, owners and change history.",
                "method": "GET",
                "url": f"{base}/records/{i}",
                "parameters": [
                    {"name": "record_id", "in": "query"},
                    {"name": "page", "in": "query", "type": "integer"},
                ],
            }
        )
    (home / "tools").mkdir(parents=True, exist_ok=True)
    (home / "tools" / "office.yaml").write_text(json.dumps({"tools": tools}), encoding="utf-8")
    host = base.removeprefix("http://")
    (home / "policy.yaml").write_text(f'scopes:\n  api_hosts: ["{host}"]\n', encoding="utf-8")


async def start(home: Path, llm: FakeVLLM, tg: FakeTelegram, factory: Any, **extra: Any) -> Service:
    settings = make_settings(home, llm=llm, tg=tg, telegram_allowed_users=[OWNER, FRIEND], **extra)
    svc: Service = await factory(settings)
    return svc


def tool_names(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def tool_results(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def ask(tg: FakeTelegram, user: int, text: str, count: int = 1) -> str:
    tg.push_message(user, text)
    sent = await tg.wait_sent(chat_id=user, method="sendMessage", count=count)
    return str(sent[-1]["text"])


async def test_deferred_tools_are_found_by_search_then_listed_and_called(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    office_api: OfficeApi,
) -> None:
    write_tools(clean_environ, office_api.base)
    await start(clean_environ, fake_llm, fake_tg, service_factory, tools_prompt_budget=1000)
    fake_llm.push(
        vllm.tool_calls([("tool_search", {"query": "查找会议室"})]),
        vllm.tool_calls([("office_rooms_find", {"city": "杭州"})]),
        vllm.text("空闲：西湖厅"),
    )
    assert await ask(fake_tg, OWNER, "杭州有空会议室吗") == "空闲：西湖厅"

    first, second, third = fake_llm.requests[-3:]
    listed = tool_names(first)
    assert "tool_search" in listed and "current_time" in listed and "task_plan" in listed
    assert not [n for n in listed if n.startswith(("office_", "crm_"))]
    assert listed == sorted(listed)
    found = tool_results(second)[0]
    assert "office_rooms_find (http:office, read): Find free meeting rooms." in found
    assert "crm_record" not in found
    assert "office_rooms_find" in tool_names(second)
    assert not [n for n in tool_names(second) if n.startswith("crm_")]
    assert tool_names(second) == sorted(tool_names(second))
    assert "西湖厅" in tool_results(third)[-1] and office_api.requests == ["/rooms"]

    # English works the same way; and each turn starts from the short list again.
    fake_llm.push(
        vllm.tool_calls([("tool_search", {"query": "unpaid invoices", "limit": 3})]),
        vllm.text("found it"),
    )
    assert await ask(fake_tg, OWNER, "which invoices are unpaid?", count=2) == "found it"
    start_of_turn, after_search = fake_llm.requests[-2:]
    assert tool_names(start_of_turn) == listed
    lines = tool_results(after_search)[-1].splitlines()[1:-1]  # inside <tool_result>
    assert lines[0].startswith("Found ") and "callable now" in lines[0]
    assert lines[1].startswith("- office_invoice_list (http:office, read): List unpaid")
    assert len(lines) <= 4  # the limit of 3


async def test_a_deferred_tool_called_by_name_runs_and_is_listed_from_the_next_step(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    office_api: OfficeApi,
) -> None:
    write_tools(clean_environ, office_api.base)
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory, tools_prompt_budget=1000)
    fake_llm.push(
        vllm.tool_calls([("office_rooms_find", {"city": "杭州"})]),
        vllm.text("西湖厅 is free."),
    )
    await ask(fake_tg, OWNER, "rooms in Hangzhou")
    first, second = fake_llm.requests[-2:]
    assert "office_rooms_find" not in tool_names(first)
    assert "西湖厅" in tool_results(second)[0]
    assert "office_rooms_find" in tool_names(second)  # its schema comes with the next step
    assert len(office_api.requests) == 1
    rows = await AuditLog(svc.runtime.stores.db).entries(limit=None)
    call = next(r for r in rows if r.action == "tool_call")
    assert call.target == "office_rooms_find" and call.detail["ran"] is True


async def test_budget_zero_sends_every_tool_and_no_search(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    office_api: OfficeApi,
) -> None:
    write_tools(clean_environ, office_api.base)
    await start(clean_environ, fake_llm, fake_tg, service_factory, tools_prompt_budget=0)
    fake_llm.push(vllm.text("hi"))
    await ask(fake_tg, OWNER, "hi")
    listed = tool_names(fake_llm.requests[-1])
    assert "tool_search" not in listed
    assert len([n for n in listed if n.startswith("crm_")]) == FILLERS
    assert {"office_rooms_find", "office_invoice_list", "current_time"} <= set(listed)


async def test_tools_switched_off_for_a_user_are_never_found(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    office_api: OfficeApi,
) -> None:
    write_tools(clean_environ, office_api.base)
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory, tools_prompt_budget=1000)
    fake_llm.push(vllm.text("hello"))
    await ask(fake_tg, FRIEND, "hello")  # pairs the friend
    first = tool_names(fake_llm.requests[-1])
    assert not [n for n in first if n.startswith(("office_", "crm_"))]  # none enabled for them
    assert "tool_search" in first and "table_write" not in first  # on-demand built-ins
    friend = await svc.runtime.stores.identities.user_for("telegram", str(FRIEND))
    assert friend is not None
    await ToolAccess(svc.runtime.stores.db, AuditLog(svc.runtime.stores.db)).set(
        friend, "crm_*", enabled=True
    )
    fake_llm.push(
        vllm.tool_calls(
            [
                ("tool_search", {"query": "查找会议室"}),
                ("tool_search", {"query": "find meeting rooms"}),
                ("tool_search", {"query": "record history"}),
            ]
        ),
        vllm.tool_calls([("office_rooms_find", {"city": "杭州"})]),
        vllm.text("Not for you."),
    )
    await ask(fake_tg, FRIEND, "find me a room", count=2)
    start_of_turn, after_search, after_call = fake_llm.requests[-3:]
    assert "tool_search" in tool_names(start_of_turn)
    chinese, english, records = tool_results(after_search)
    assert "No tool matches" in chinese and "No tool matches" in english
    assert "crm_record_00" in records and "office_" not in records
    assert not [n for n in tool_names(after_search) if n.startswith("office_")]
    refused = tool_results(after_call)[-1]
    assert "not enabled for this user" in refused and "tool_search" not in refused
    assert office_api.requests == []


def test_ranking_weighs_name_matches_double_and_breaks_ties_by_name() -> None:
    registry = ToolRegistry()
    for name, description in [
        ("notes_room", "Keep notes."),
        ("booking_make", "Reserve a room for a meeting."),
        ("calendar_sync", "Sync the meeting calendar; 预订会议室之后同步。"),
        ("zoo_feed", "Feed the animals."),
    ]:
        spec = HttpToolSpec.model_validate(
            {"name": name, "description": description, "method": "GET", "url": "http://h/x"}
        )
        registry.register(build_tool(spec, source="http:t"))
    catalog = DeferredCatalog(registry, ["notes_room", "booking_make", "calendar_sync"])
    ranked = [t.name for t in catalog.search("Meeting rooms", 8)]
    # booking_make: room + meeting (1 + 1); notes_room: room in the name (2); then calendar_sync.
    assert ranked == ["booking_make", "notes_room", "calendar_sync"]
    assert [t.name for t in catalog.search("预订会议室", 8)] == ["calendar_sync"]
    assert catalog.search("feed animals", 8) == []  # zoo_feed is not deferred: not searchable
    catalog.activate(["zoo_feed", "notes_room", "notes_room"])
    assert catalog.activated == ["notes_room"]
