"""`dadang run` as a real process: crash mid-turn, restart, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 4242


class Proc:
    """A `dadang run` child process with its HTTP port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = int(env["DADANG_HTTP_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(env["DADANG_HOME"]).parent / "run.log"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli.main", "run"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("dadang run did not become healthy")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        return self.proc.returncode, self.log.read_text()


@pytest.fixture
def proc_env(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram
) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DADANG_HOME": str(clean_environ),
        "DADANG_LLM_BASE_URL": fake_llm.url,
        "DADANG_TELEGRAM_TOKEN": fake_tg.token,
        "DADANG_TELEGRAM_API_BASE": fake_tg.api_base,
        "DADANG_TELEGRAM_ALLOWED_USERS": str(OWNER),
        "DADANG_TELEGRAM_POLL_TIMEOUT": "1",
        "DADANG_HTTP_PORT": str(free_port()),
        "DADANG_LOG_LEVEL": "INFO",
        "DADANG_MEMORY_REFLECT": "false",
    }
    yield env


async def _until_the_model_is_asked(fake_llm: FakeVLLM) -> None:
    deadline = time.monotonic() + 15
    while not fake_llm.requests and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert fake_llm.requests, "the turn never reached the model"


def _rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "dadang.db") as conn:
        return conn.execute(sql).fetchall()


async def test_killed_mid_turn_then_restarted_answers_exactly_once(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, proc_env: dict[str, str]
) -> None:
    service = Proc(proc_env)
    await asyncio.to_thread(service.start)
    fake_llm.push(vllm.hang(60, vllm.text("too late")))
    fake_tg.push_message(OWNER, "survive this")
    await _until_the_model_is_asked(fake_llm)
    service.kill()  # SIGKILL while the model holds the request
    assert fake_tg.sent_to(OWNER) == []

    await asyncio.to_thread(service.start)  # the update is redelivered too: it must dedupe
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1, timeout=20)
    await asyncio.sleep(1.5)
    assert [s["text"] for s in fake_tg.sent_to(OWNER)] == ["echo: survive this"]
    code, log = await asyncio.to_thread(service.terminate)
    assert code == 0, log
    assert fake_tg.token not in log  # the bot token never reaches a log line
    rows = _rows(clean_environ, "SELECT role, text, status FROM messages ORDER BY id")
    assert rows == [("user", "survive this", "done"), ("assistant", sent[0]["text"], "done")]


async def test_sigterm_lets_the_running_turn_finish_and_deliver(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, proc_env: dict[str, str]
) -> None:
    service = Proc(proc_env)
    await asyncio.to_thread(service.start)
    fake_llm.push(vllm.hang(1.5, vllm.text("finished before exit")))
    fake_tg.push_message(OWNER, "slow one")
    await _until_the_model_is_asked(fake_llm)
    code, log = await asyncio.to_thread(service.terminate)
    assert code == 0, log
    assert [s["text"] for s in fake_tg.sent_to(OWNER)] == ["finished before exit"]
