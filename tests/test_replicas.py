"""Two replicas on one PostgreSQL database and one bot token: only the elected leader polls
Telegram (a second long poll would end the first with 409 over and over); when it stops, the
other takes over and messages keep being answered, once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 4242


def receiving(svc: Service) -> bool:
    return bool(svc.runtime.connectors["telegram"].status()["receiving"])


async def test_only_the_leader_polls_and_the_standby_takes_over(
    tmp_path: Path,
    clean_environ: Path,
    pg_url: str,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
) -> None:
    common = {
        "database_url": pg_url,
        "telegram_allowed_users": [OWNER],
        "scheduler_leader_poll": 0.2,
        "telegram_poll_timeout": 1,
        "heartbeat_minutes": 0,
    }
    first: Service = await service_factory(
        make_settings(tmp_path / "a", llm=fake_llm, tg=fake_tg, **common)
    )
    second: Service = await service_factory(
        make_settings(tmp_path / "b", llm=fake_llm, tg=fake_tg, **common)
    )
    await asyncio.sleep(1.5)  # several poll rounds of both
    assert (receiving(first), receiving(second)) == (True, False)
    assert fake_tg.conflicts == 0

    fake_llm.push(vllm.text("one"))
    fake_tg.push_message(OWNER, "hello")
    assert (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage"))[-1]["text"] == "one"

    await first.stop()
    # Stopping confirms the offset with one short poll, which ends first's abandoned long poll
    # on the server side (a 409 nobody reads); from here on nothing may conflict.
    settled = fake_tg.conflicts
    for _ in range(50):
        if receiving(second):
            break
        await asyncio.sleep(0.1)
    assert receiving(second)
    fake_llm.push(vllm.text("two"))
    fake_tg.push_message(OWNER, "still there?")
    sent = await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2)
    assert [m["text"] for m in sent] == ["one", "two"]
    assert fake_tg.conflicts == settled
