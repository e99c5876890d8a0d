"""Approvals through the whole loop: fake Telegram in, policy asks, buttons decide, turn resumes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from connectors.cli import TerminalConnector
from memory.approval_models import Approval
from memory.audit import AuditLog
from memory.memories import NewMemory
from memory.types import utcnow
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 3003
OTHER = 4004


async def start(home: Path, llm: FakeVLLM, tg: FakeTelegram, factory: Any, **extra: Any) -> Service:
    settings = make_settings(home, llm=llm, tg=tg, telegram_allowed_users=[OWNER, OTHER], **extra)
    svc: Service = await factory(settings)
    return svc


async def seed_memory(svc: Service, text: str = "Likes green tea") -> int:
    owner = await svc.runtime.stores.identities.owner()
    assert owner is not None
    record = await svc.runtime.memory.remember(owner.id, NewMemory(content=text))
    return record.id


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Callback data by its action suffix (ok / no / always)."""
    rows = message["reply_markup"]["inline_keyboard"]
    return {b["callback_data"].rsplit(":", 1)[1]: b["callback_data"] for r in rows for b in r}


async def ask_forget(
    svc: Service, llm: FakeVLLM, tg: FakeTelegram, memory_id: int, *, count: int = 1
) -> dict[str, Any]:
    llm.push(vllm.tool_calls([("memory_forget", {"memory_id": memory_id})]), vllm.text("Done."))
    tg.push_message(OWNER, f"forget #{memory_id}")
    request = (await tg.wait_sent(chat_id=OWNER, method="sendMessage", count=count))[-1]
    assert "memory_forget" in request["text"] and "irreversible" in request["text"]
    return request


async def actions(svc: Service) -> list[str]:
    return [r.action for r in await AuditLog(svc.runtime.stores.db).entries(limit=None)]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("pg_url")}


async def test_approve_runs_the_call_once_and_a_double_tap_changes_nothing(
    clean_environ: Path,
    backend: dict[str, Any],
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory, **backend)
    memory_id = await seed_memory(svc)
    request = await ask_forget(svc, fake_llm, fake_tg, memory_id)
    assert set(buttons(request)) == {"ok", "no", "always"}
    assert await svc.runtime.memory.store.count() == 1  # nothing happens before the answer
    fake_tg.push_callback(OWNER, buttons(request)["ok"], message_id=request["message_id"])
    fake_tg.push_callback(OWNER, buttons(request)["ok"], message_id=request["message_id"])
    reply = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2))[-1]
    assert reply["text"] == "Done."
    assert await svc.runtime.memory.store.count() == 0
    answers = fake_tg.callback_answers
    assert len(answers) == 2
    assert "already answered" in (answers[1].get("text") or "")
    trail = await actions(svc)
    assert trail.count("approval_requested") == 1 and trail.count("approval_approved") == 1
    tool_rows = [
        r
        for r in await AuditLog(svc.runtime.stores.db).entries(limit=None)
        if r.action == "tool_call"
    ]
    assert [(r.target, r.detail["ran"]) for r in tool_rows] == [("memory_forget", True)]
    assert (await AuditLog(svc.runtime.stores.db).verify())[1] == []
    await asyncio.sleep(0.3)
    assert len(fake_tg.sent_to(OWNER, method="sendMessage")) == 2  # no second reply


async def test_reject_keeps_the_data_tells_the_model_and_remembers_the_rejection(
    clean_environ: Path,
    backend: dict[str, Any],
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory, **backend)
    memory_id = await seed_memory(svc)
    request = await ask_forget(svc, fake_llm, fake_tg, memory_id)
    fake_tg.push_callback(OWNER, buttons(request)["no"], message_id=request["message_id"])
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    tool_message = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "the user rejected this action" in tool_message["content"]
    kinds = {m.kind: m.content for m in await svc.runtime.memory.store.recent(1, limit=10)}
    assert "Likes green tea" in kinds.values()
    assert "memory_forget" in kinds["rejected_proposal"]
    edited = fake_tg.sent_to(OWNER, method="editMessageText")[-1]
    assert edited["text"].endswith("❌ Rejected — not done.")
    assert "approval_rejected" in await actions(svc)


async def test_a_request_expires_with_a_note_and_the_turn_ends(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    memory_id = await seed_memory(svc)
    request = await ask_forget(svc, fake_llm, fake_tg, memory_id)
    pending = (await svc.runtime.approvals.store.listing())[0]
    assert pending.outbox_id is not None
    async with asyncio.timeout(5):  # the sender confirms deliveries in batches
        while not await svc.runtime.stores.outbox.sent_ids(pending.outbox_id):
            await asyncio.sleep(0.05)
    async with svc.runtime.stores.db.engine.begin() as conn:
        await conn.execute(update(Approval).values(expires_at=utcnow()))
    await svc.runtime.approvals.tick()
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    tool_message = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "expired without an answer" in tool_message["content"]
    assert await svc.runtime.memory.store.count() == 1
    edits = fake_tg.sent_to(OWNER, method="editMessageText")
    assert edits[-1]["message_id"] == request["message_id"]
    assert "Expired" in edits[-1]["text"]
    fake_tg.push_callback(OWNER, buttons(request)["ok"], message_id=request["message_id"])
    await asyncio.sleep(0.5)
    assert "already answered (expired)" in fake_tg.callback_answers[-1].get("text", "")
    assert await svc.runtime.memory.store.count() == 1


async def test_a_turn_waiting_across_a_restart_resumes_where_it_stopped(
    clean_environ: Path,
    backend: dict[str, Any],
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory, **backend)
    memory_id = await seed_memory(svc)
    request = await ask_forget(svc, fake_llm, fake_tg, memory_id)
    calls_before = len(fake_llm.requests)
    await svc.stop()
    again = await start(clean_environ, fake_llm, fake_tg, service_factory, **backend)
    await asyncio.sleep(0.5)
    assert len(fake_llm.requests) == calls_before  # the waiting turn is not re-run at start
    fake_tg.push_callback(OWNER, buttons(request)["ok"], message_id=request["message_id"])
    reply = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2))[-1]
    assert reply["text"] == "Done."
    assert await again.runtime.memory.store.count() == 0
    # Resumed from the checkpoint: one more model call (after the tool), not a fresh turn.
    assert len(fake_llm.requests) == calls_before + 1


async def test_always_allow_adds_a_grant_and_the_next_call_runs_without_asking(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    first = await seed_memory(svc, "one")
    second = await seed_memory(svc, "two")
    request = await ask_forget(svc, fake_llm, fake_tg, first)
    fake_tg.push_callback(OWNER, buttons(request)["always"], message_id=request["message_id"])
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    grants = await svc.runtime.grants.listing(1)
    assert [(g.tool, g.target) for g in grants] == [("memory_forget", "")]
    assert "policy_grant_added" in await actions(svc)
    assert await svc.runtime.memory.store.count() == 1
    # The grant covers the tool: forgetting another memory runs without a request.
    fake_llm.push(vllm.tool_calls([("memory_forget", {"memory_id": second})]), vllm.text("Gone."))
    fake_tg.push_message(OWNER, f"forget #{second}")
    reply = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=3))[-1]
    assert reply["text"] == "Gone."
    assert await svc.runtime.memory.store.count() == 0


async def test_someone_else_cannot_answer_my_request(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    memory_id = await seed_memory(svc)
    request = await ask_forget(svc, fake_llm, fake_tg, memory_id)
    fake_tg.push_callback(
        OTHER, buttons(request)["ok"], message_id=request["message_id"], chat_id=OTHER
    )
    await asyncio.sleep(0.5)
    answer = fake_tg.callback_answers[-1]
    assert "not yours" in answer.get("text", "")
    assert await svc.runtime.memory.store.count() == 1
    assert (await svc.runtime.approvals.store.listing())[0].status == "pending"


async def test_the_http_api_is_closed_without_a_token_and_decides_with_one(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory, api_token="s3cret-token")
    memory_id = await seed_memory(svc)
    await ask_forget(svc, fake_llm, fake_tg, memory_id)
    async with httpx.AsyncClient(base_url=svc.base) as client:
        assert (await client.get("/api/approvals")).status_code == 401
        auth = {"Authorization": "Bearer s3cret-token"}
        listed = (await client.get("/api/approvals", headers=auth)).json()["approvals"]
        assert [a["tool"] for a in listed] == ["memory_forget"]
        bad = await client.post(f"/api/approvals/{listed[0]['id']}", json={}, headers=auth)
        assert bad.status_code == 400
        url = f"/api/approvals/{listed[0]['id']}"
        ok = await client.post(url, json={"decision": "approve"}, headers=auth)
        assert ok.status_code == 200 and ok.json()["approval"]["status"] == "approved"
        again = await client.post(url, json={"decision": "reject"}, headers=auth)
        assert again.status_code == 409
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    assert await svc.runtime.memory.store.count() == 0


async def test_the_api_refuses_everything_when_no_token_is_set(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await start(clean_environ, fake_llm, fake_tg, service_factory)
    async with httpx.AsyncClient(base_url=svc.base) as client:
        response = await client.get("/api/approvals", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403 and "DADANG_API_TOKEN" in response.json()["error"]


async def test_the_terminal_shows_numbered_choices_and_a_number_answers(
    clean_environ: Path, fake_llm: FakeVLLM
) -> None:
    from agent.runtime.service import Runtime
    from memory.migrate import upgrade

    printed: list[str] = []
    terminal = TerminalConnector(write=printed.append)
    settings = make_settings(clean_environ, llm=fake_llm)
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    runtime = Runtime(settings, [terminal])
    await runtime.start()
    try:
        owner = await runtime.stores.identities.owner()
        assert owner is not None
        memory = await runtime.memory.remember(owner.id, NewMemory(content="old plan"))
        fake_llm.push(
            vllm.tool_calls([("memory_forget", {"memory_id": memory.id})]), vllm.text("Gone.")
        )
        await terminal.say(f"forget #{memory.id}", message_id="t1")
        assert await terminal.wait_reply(10)
        assert "[1] ✅ Approve" in printed[-1] and "[2] ❌ Reject" in printed[-1]
        await terminal.say("1", message_id="t2")
        assert await terminal.wait_reply(10)
        assert printed[-1] == "Gone."
        assert any("✅ Approved" in line for line in printed)
        assert await runtime.memory.store.count() == 0
    finally:
        await runtime.stop()
