"""Rate limits and data scopes through a running service."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from agent.policy.rules import DEFAULT_POLICY, POLICY_FILE
from memory.memories import NewMemory
from tests.conftest import make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 3003


async def test_messages_over_the_limit_are_refused_once_and_kept(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await service_factory(
        make_settings(
            clean_environ,
            llm=fake_llm,
            tg=fake_tg,
            telegram_allowed_users=[OWNER],
            rate_messages_per_minute=2,
        )
    )
    for i in range(4):
        fake_tg.push_message(OWNER, f"message {i}")
    sent = await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=3)
    await asyncio.sleep(0.5)
    texts = [m["text"] for m in fake_tg.sent_to(OWNER, method="sendMessage")]
    assert len(texts) == 3, texts  # two answers, one notice, silence for the fourth
    notice = next(t for t in texts if "limit 2 per minute" in t)
    assert "not answered" in notice
    assert len(fake_llm.requests) == 2
    assert sent  # every message is stored, answered or not
    stored = await svc.runtime.stores.conversations.count(role="user")
    assert stored == 4


async def test_tool_calls_over_the_hourly_limit_are_refused_to_the_model(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    await service_factory(
        make_settings(
            clean_environ,
            llm=fake_llm,
            tg=fake_tg,
            telegram_allowed_users=[OWNER],
            rate_tool_calls_per_hour=1,
        )
    )
    fake_llm.push(
        vllm.tool_calls([("current_time", {}), ("current_time", {})]), vllm.text("It's late.")
    )
    fake_tg.push_message(OWNER, "what time is it?")
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=1)
    results = [m["content"] for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "limit of 1 tool calls per hour" not in results[0]
    assert "limit of 1 tool calls per hour is reached" in results[1]


async def test_memory_kinds_outside_the_scope_never_reach_the_model(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    clean_environ.mkdir(parents=True, exist_ok=True)
    (clean_environ / POLICY_FILE).write_text(
        DEFAULT_POLICY.replace('  memory_kinds: ["*"]', '  memory_kinds: ["fact", "preference"]')
    )
    svc = await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    owner = await svc.runtime.stores.identities.owner()
    assert owner is not None
    await svc.runtime.memory.remember(
        owner.id, NewMemory(content="Prefers jasmine tea", kind="preference")
    )
    await svc.runtime.memory.remember(
        owner.id, NewMemory(content="Felt anxious about the jasmine tea tasting", kind="mood")
    )
    fake_llm.push(vllm.tool_calls([("memory_search", {"query": "jasmine tea"})]), vllm.text("ok"))
    fake_tg.push_message(OWNER, "what do you know about jasmine tea?")
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=1)
    for request in fake_llm.requests:
        sent = json.dumps(request, ensure_ascii=False)
        assert "anxious" not in sent
    assert "Prefers jasmine tea" in json.dumps(fake_llm.requests[-1], ensure_ascii=False)
