"""Calendar awareness against a real Radicale: briefing with conflicts, events in chat and
heartbeats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.calendar.ics_data import vcalendar
from tests.calendar.radicale import Radicale
from tests.conftest import make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 1001
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    server = Radicale(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


def _event(uid: str, summary: str, start: datetime, minutes: int) -> str:
    end = start + timedelta(minutes=minutes)
    return vcalendar(
        f"""
        UID:{uid}
        SUMMARY:{summary}
        DTSTART;TZID=Asia/Shanghai:{start:%Y%m%dT%H%M%S}
        DTEND;TZID=Asia/Shanghai:{end:%Y%m%dT%H%M%S}
        """
    )


@pytest.fixture
def calendar(radicale: Radicale) -> tuple[str, datetime]:
    url = radicale.make_calendar()
    today = datetime.now(SHANGHAI).replace(tzinfo=None, second=0, microsecond=0)
    tomorrow = (today + timedelta(days=1)).replace(hour=14, minute=0)
    radicale.put(url, _event("review", "Design review", tomorrow, 60))
    radicale.put(url, _event("dentist", "Dentist", tomorrow.replace(minute=30), 60))
    soon = today + timedelta(minutes=90)
    radicale.put(url, _event("pitch", "Investor pitch", soon, 30))
    return url, soon


def _settings(home: Path, llm: FakeVLLM, tg: FakeTelegram, url: str) -> Any:
    return make_settings(
        home,
        llm=llm,
        tg=tg,
        telegram_allowed_users=[OWNER],
        calendar_urls=[url],
        quiet_hours="",
        heartbeat_minutes=0,
        nudge_min_gap_minutes=0,
    )


async def test_briefing_lists_events_and_warns_of_conflicts(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory, calendar
) -> None:
    url, _ = calendar
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg, url))
    fake_llm.push(vllm.text("你好"))
    fake_tg.push_message(OWNER, "你好", language_code="zh-hans")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    owner = (await svc.runtime.stores.identities.owner()).id
    assert await svc.runtime.proactive.briefing.brief(owner) == "sent"
    text = (await fake_tg.wait_sent(chat_id=OWNER, count=2))[1]["text"]
    assert text.startswith("早上好！今天的安排：")
    assert "Investor pitch" in text
    assert "明天 14:30「Design review」与「Dentist」时间重叠" in text
    log = await svc.runtime.proactive.store.entries(user_id=owner)
    assert log[0].source == "briefing" and log[0].decision == "sent"


async def test_chat_about_tomorrow_sees_events_and_conflicts(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory, calendar
) -> None:
    url, _ = calendar
    await service_factory(_settings(clean_environ, fake_llm, fake_tg, url))
    fake_llm.push(vllm.text("明天下午设计评审和牙医时间冲突。"))
    fake_tg.push_message(OWNER, "明天有什么安排？", language_code="zh-hans")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    context = fake_llm.requests[-1]["messages"][-2]["content"]
    assert "«Design review»" in context and "«Dentist»" in context
    assert "CONFLICT" in context
    names = [t["function"]["name"] for t in fake_llm.requests[-1]["tools"]]
    assert "calendar_events" in names and "calendar_create_event" in names


async def test_heartbeat_considers_an_upcoming_event(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory, calendar
) -> None:
    url, soon = calendar
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg, url))
    fake_llm.push(vllm.text("Hi"))
    fake_tg.push_message(OWNER, "hi")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    owner = (await svc.runtime.stores.identities.owner()).id
    decision = {
        "action": "message",
        "message": "Pitch in 90 min — deck ready?",
        "reason": "event needs preparation",
        "refs": [],
    }
    fake_llm.push(vllm.text(json.dumps(decision)))
    assert await svc.runtime.proactive.heartbeat.beat(owner) == "sent"
    prompt = fake_llm.requests[-1]["messages"][-1]["content"]
    assert f"event {soon:%H:%M}" in prompt and "«Investor pitch»" in prompt
    assert (await fake_tg.wait_sent(chat_id=OWNER, count=2))[1]["text"].startswith("Pitch in 90")


async def test_a_calendar_that_is_down_degrades_gracefully(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/alice/cal/"
    await service_factory(_settings(clean_environ, fake_llm, fake_tg, url))
    fake_llm.push(vllm.text("Your calendar is unreachable right now."))
    fake_tg.push_message(OWNER, "what's on my schedule tomorrow?")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    context = fake_llm.requests[-1]["messages"][-2]["content"]
    assert "calendar error" in context


async def test_doctor_reads_the_calendars(clean_environ: Path, calendar) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    from tests.conftest import free_port

    url, _ = calendar
    down = f"http://127.0.0.1:{free_port()}/alice/cal/"
    results = []
    for urls in (url, down):
        results.append(
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "agent.cli.main", "doctor"],
                capture_output=True,
                text=True,
                check=False,
                env={
                    **os.environ,
                    "DADANG_HOME": str(clean_environ),
                    "DADANG_CALENDAR_URLS": urls,
                    "DADANG_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
                },
            )
        )
    assert "✓ calendar: 1 calendar(s), " in results[0].stdout
    assert "✗ calendar: calendar 'calendar1': cannot connect" in results[1].stdout
    assert results[1].returncode == 1
