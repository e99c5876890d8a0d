"""One scheduler per database: PostgreSQL advisory-lock leader with failover, SQLite file lock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from memory.db import open_database
from memory.proactive_models import JobRun
from tests.conftest import free_port, make_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 1001
COMMON = {
    "scheduler_poll": 0.2,
    "scheduler_leader_poll": 1.0,
    "heartbeat_minutes": 0,
    "quiet_hours": "",
    "telegram_allowed_users": [OWNER],
}


def _start_leader_process(
    home: Path, url: str, llm: FakeVLLM, tg: FakeTelegram
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DADANG_HOME": str(home),
        "DADANG_DATABASE_URL": url,
        "DADANG_LLM_BASE_URL": llm.url,
        "DADANG_TELEGRAM_TOKEN": tg.token,
        "DADANG_TELEGRAM_API_BASE": tg.api_base,
        "DADANG_TELEGRAM_ALLOWED_USERS": str(OWNER),
        "DADANG_TELEGRAM_POLL_TIMEOUT": "1",
        "DADANG_HTTP_PORT": str(port),
        "DADANG_MEMORY_REFLECT": "false",
        "DADANG_SCHEDULER_POLL": "0.2",
        "DADANG_SCHEDULER_LEADER_POLL": "1",
        "DADANG_HEARTBEAT_MINUTES": "0",
        "DADANG_QUIET_HOURS": "",
    }
    with (home.parent / "leader.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli.main", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (home.parent / "leader.log").read_text()
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
            if health["scheduler"]["leading"]:
                return proc, port
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError("the first process never became the scheduler leader")


async def _runs(url: str) -> int:
    db = open_database(url)
    try:
        async with db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(JobRun))).scalar_one())
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_two_replicas_on_postgres_one_leader_and_failover(
    tmp_path: Path, pg_url: str, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    leader, _ = await asyncio.to_thread(
        _start_leader_process, tmp_path / "a" / "home", pg_url, fake_llm, fake_tg
    )
    try:
        standby = await service_factory(
            make_settings(tmp_path / "b", llm=fake_llm, tg=fake_tg, database_url=pg_url, **COMMON)
        )
        await asyncio.sleep(1.5)
        assert not standby.runtime.proactive.leading
        reminders = standby.runtime.proactive.reminders  # a standby still creates reminders
        owner = (await standby.runtime.stores.identities.owner()).id
        await reminders.create(
            user_id=owner,
            text="fired by the leader",
            timezone="UTC",
            at=datetime.now(UTC) + timedelta(seconds=2),
            channel="telegram",
            chat_id=str(OWNER),
        )
        await fake_tg.wait_sent(chat_id=OWNER, count=1, timeout=10)
        await asyncio.sleep(1.0)
        assert standby.runtime.proactive.leading is False
        # The leader dies without a goodbye.
        leader.send_signal(signal.SIGKILL)
        await asyncio.to_thread(leader.wait, 10)
        died = time.monotonic()
        await reminders.create(
            user_id=owner,
            text="fired after failover",
            timezone="UTC",
            at=datetime.now(UTC) + timedelta(seconds=1),
            channel="telegram",
            chat_id=str(OWNER),
        )
        while not standby.runtime.proactive.leading:
            assert time.monotonic() - died < 30, "no takeover within 30 s"
            await asyncio.sleep(0.1)
        takeover = time.monotonic() - died
        sent = await fake_tg.wait_sent(chat_id=OWNER, count=2, timeout=10)
        assert [s["text"] for s in sent] == [
            "⏰ Reminder: fired by the leader",
            "⏰ Reminder: fired after failover",
        ]
        assert takeover < 5
        assert await _runs(pg_url) == 2
    finally:
        if leader.poll() is None:
            leader.kill()


async def test_two_runtimes_on_one_sqlite_file_elect_one_leader(
    tmp_path: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = await service_factory(
        make_settings(tmp_path / "a", llm=fake_llm, tg=fake_tg, database_url=url, **COMMON)
    )
    second = await service_factory(
        make_settings(tmp_path / "b", llm=fake_llm, database_url=url, **COMMON)
    )
    assert first.runtime.proactive.leading and not second.runtime.proactive.leading
    await first.stop()  # a clean stop releases the lock; the other takes over
    for _ in range(40):
        if second.runtime.proactive.leading:
            break
        await asyncio.sleep(0.1)
    assert second.runtime.proactive.leading
