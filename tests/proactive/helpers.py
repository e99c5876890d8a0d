"""Settings and CLI calls the proactivity tests share."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.settings import Settings
from tests.conftest import make_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 1001


def proactive_settings(
    home: Path, llm: FakeVLLM, tg: FakeTelegram | None, **extra: Any
) -> Settings:
    """Fast polls, no quiet hours, no automatic heartbeats, no minimum gap; `extra` overrides."""
    values: dict[str, Any] = {
        "telegram_allowed_users": [OWNER],
        "scheduler_poll": 0.2,
        "quiet_hours": "",
        "heartbeat_minutes": 0,
        "followup_after_hours": 0,
        "nudge_min_gap_minutes": 0,
    }
    values.update(extra)
    return make_settings(home, llm=llm, tg=tg, **values)


async def jobs_add(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a real `dadang jobs add …` process against `home`."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent.cli.main", "jobs", "add", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DADANG_HOME": str(home), "DADANG_TELEGRAM_ALLOWED_USERS": str(OWNER)},
    )
