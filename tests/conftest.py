"""Shared fixtures: isolated DADANG_HOME, a loopback-only network, fakes, databases, a service."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.runtime.http import HttpServer
from agent.runtime.serve import channel_connectors
from agent.runtime.service import Runtime
from agent.settings import Settings, load_settings
from memory.migrate import upgrade
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

PG_ADMIN = os.environ.get("DADANG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# --- no network by accident -------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_LOOPBACK = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family == socket.AF_UNIX:
        return
    host = address[0] if isinstance(address, tuple) else str(address)
    if not str(host).startswith(_LOOPBACK):
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


# --- every test owns its state ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """DADANG_HOME in tmp_path and no DADANG_* variables leaking in from the shell."""
    for key in list(os.environ):
        if key.startswith("DADANG_") and key != "DADANG_TEST_PG":
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("DADANG_HOME", str(home))
    return home


@pytest.fixture
def fake_llm() -> Iterator[FakeVLLM]:
    """A vLLM-faithful OpenAI server on loopback."""
    with FakeVLLM() as server:
        yield server


@pytest.fixture
def fake_tg() -> Iterator[FakeTelegram]:
    """A Telegram Bot API server on loopback."""
    with FakeTelegram() as server:
        yield server


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"dadang_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and on PostgreSQL, migrated to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    return url


def make_settings(
    home: Path, *, llm: FakeVLLM | None = None, tg: FakeTelegram | None = None, **extra: Any
) -> Settings:
    """Settings pointing at the fakes."""
    # Extraction makes extra model calls that would consume scripted replies; tests of memory
    # turn it on explicitly.
    values: dict[str, Any] = {
        "home": home,
        "http_port": 0,
        "timezone": "Asia/Shanghai",
        "memory_reflect": False,
    }
    if llm is not None:
        values["llm_base_url"] = llm.url
    if tg is not None:
        values["telegram_token"] = tg.token
        values["telegram_api_base"] = tg.api_base
        values["telegram_poll_timeout"] = 1
    values.update(extra)
    return load_settings(**values)


@dataclass
class Service:
    """An in-process `dadang run`: runtime plus HTTP app."""

    runtime: Runtime
    http: HttpServer
    settings: Settings
    stopped: bool = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http.port}"

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.runtime.stop()
        await self.http.stop()


async def start_service(settings: Settings) -> Service:
    """Migrate, then start runtime and HTTP app like `dadang run` does."""
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    runtime = Runtime(settings, channel_connectors(settings))
    http = HttpServer(runtime, host="127.0.0.1", port=settings.http_port)
    await http.start()
    await runtime.start()
    return Service(runtime=runtime, http=http, settings=settings)


@pytest.fixture
async def service_factory() -> AsyncIterator[Any]:
    """Start services on demand; all are stopped at the end of the test."""
    started: list[Service] = []

    async def factory(settings: Settings) -> Service:
        svc = await start_service(settings)
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        await svc.stop()
