"""Follow-ups: a commitment the user made is asked about when due — unless it was closed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.proactive.planner import followup_time
from memory.memories import NewMemory
from memory.models import MemoryKind
from memory.proactive_models import ReminderOrigin
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.proactive.helpers import OWNER, proactive_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _settings(home: Path, llm: FakeVLLM, tg: FakeTelegram, **extra: Any) -> Any:
    return proactive_settings(home, llm, tg, **extra)


def test_followup_is_on_the_morning_of_the_due_day() -> None:
    thursday_evening = datetime(2026, 12, 3, 18, 0, tzinfo=SHANGHAI)
    assert followup_time(thursday_evening, SHANGHAI) == datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 12, 3, 9, 30, tzinfo=SHANGHAI)
    assert followup_time(early, SHANGHAI) == datetime(2026, 12, 3, 8, 30, tzinfo=SHANGHAI)


async def test_commitment_from_chat_is_followed_up_and_done_closes_it(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg, memory_reflect=True))
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    thursday = (datetime.now(SHANGHAI) + timedelta(days=3)).date().isoformat()
    fake_llm.push(vllm.text("好的，记下了。"))
    fake_llm.push(
        vllm.text(
            json.dumps(
                {
                    "operations": [
                        {
                            "op": "ADD",
                            "kind": "commitment",
                            "importance": 0.8,
                            "content": f"答应在 {thursday} 前把合同发给王总",
                            "due": thursday,
                        }
                    ]
                },
                ensure_ascii=False,
            )
        )
    )
    fake_tg.push_message(OWNER, "我周四前把合同发给王总", language_code="zh-hans")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    for _ in range(100):
        memories = await svc.runtime.memory.store.recent(owner, limit=5)
        if memories:
            break
        await asyncio.sleep(0.1)
    commitment = memories[0]
    assert commitment.kind == MemoryKind.COMMITMENT
    assert await proactive.planner.plan_followups() == 1
    assert await proactive.planner.plan_followups() == 0  # once per commitment
    followups = await proactive.reminders.store.listing(user_id=owner)
    assert len(followups) == 1 and followups[0].origin == ReminderOrigin.FOLLOWUP
    assert (
        followups[0].next_run_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        == f"{thursday} 09:00"
    )
    # Time passes: move it to now and let it fire.
    await proactive.reminders.reschedule(
        followups[0].id, at=datetime.now(UTC) + timedelta(seconds=1)
    )
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=2, timeout=10)
    assert sent[1]["text"] == f"跟进一下：答应在 {thursday} 前把合同发给王总 —— 完成了吗？"
    fake_tg.push_callback(OWNER, f"r:{followups[0].id}:done", message_id=sent[1]["message_id"])
    await fake_tg.wait_sent(chat_id=OWNER, method="editMessageText", count=1)
    assert await proactive.signals.memory_current(owner, commitment.id) is None  # closed
    log = await proactive.store.entries(user_id=owner)
    assert log[0].source == "followup" and log[0].decision == "sent"


async def test_followup_of_a_closed_commitment_stays_silent(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    fake_llm.push(vllm.text("Hi!"))
    fake_tg.push_message(OWNER, "hi")  # gives the owner a Telegram chat
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    memory = svc.runtime.memory
    due = datetime.now(UTC) + timedelta(days=2)
    record = await memory.remember(
        owner,
        NewMemory(content="Promised to call the bank", kind=MemoryKind.COMMITMENT, due_at=due),
    )
    assert await proactive.planner.plan_followups() == 1
    followup = (await proactive.reminders.store.listing(user_id=owner))[0]
    # A later message closed it (extraction superseded the commitment).
    await memory.supersede(owner, record.id, NewMemory(content="Called the bank"))
    await proactive.reminders.reschedule(followup.id, at=datetime.now(UTC) + timedelta(seconds=1))
    for _ in range(60):
        log = await proactive.store.entries(user_id=owner)
        if log:
            break
        await asyncio.sleep(0.1)
    assert log[0].decision == "skipped" and log[0].reason.startswith("resolved")
    assert len(fake_tg.sent_to(OWNER)) == 1
