"""Fixtures for MCP tests: the test server over stdio or HTTP, a ToolContext, a started hub."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from automation.mcp.config import McpServerConfig
from automation.mcp.hub import McpHub
from automation.mcp.tool import McpTool
from automation.tools.base import ToolContext
from memory.db import Database, open_database
from tests.conftest import free_port

SERVER = Path(__file__).with_name("server.py")
TOKEN = "mcp-s3cr3t-bearer-token"
OWNER = 7


def stdio_config(
    name: str = "test", *, command: list[str] | None = None, **extra: Any
) -> McpServerConfig:
    """The test server over stdio (or another `command`)."""
    command = command or [sys.executable, str(SERVER), "stdio"]
    return McpServerConfig(name=name, command=command, **extra)


class HttpMcpServer:
    """`server.py http` as a subprocess on a fixed loopback port; `start` again after a crash."""

    def __init__(self, *, token: str | None = TOKEN) -> None:
        self.port = free_port()
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        command = [sys.executable, str(SERVER), "http", "--port", str(self.port)]
        if self.token:
            command += ["--token", self.token]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the MCP test server exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the MCP test server did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def http_server() -> Iterator[HttpMcpServer]:
    server = HttpMcpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'mcp.db'}")  # MCP tools never query it
    yield database
    await database.dispose()


@pytest.fixture
def ctx(db: Database) -> ToolContext:
    return ToolContext(user_id=1, timezone="Asia/Shanghai", db=db, now=datetime.now(UTC))


@pytest.fixture
async def stdio_hub() -> AsyncIterator[McpHub]:
    """The test server over stdio with a 2 s call timeout, started."""
    hub = McpHub([stdio_config(timeout=2.0)])
    assert await hub.start() == []
    yield hub
    await hub.close()


def by_name(hub: McpHub) -> dict[str, McpTool]:
    return {tool.name: tool for tool in hub.tools()}


async def resolver(user_id: int, name: str) -> str | None:
    """The owner's secret store: only the owner has `mcp_token`."""
    return TOKEN if (user_id, name) == (OWNER, "mcp_token") else None
