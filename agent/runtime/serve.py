"""Process entry points: the long-running service and the in-process terminal chat."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid

from agent.runtime.http import HttpServer
from agent.runtime.service import Runtime
from agent.settings import Settings
from connectors.base import Connector
from connectors.cli import TerminalConnector

log = logging.getLogger(__name__)


def channel_connectors(settings: Settings) -> list[Connector]:
    """The chat channels the settings enable (Telegram only with a token)."""
    connectors: list[Connector] = []
    if settings.telegram_token is not None:
        from connectors.telegram import TelegramConnector

        connectors.append(
            TelegramConnector(
                token=settings.telegram_token.get_secret_value(),
                api_base=settings.telegram_api_base,
                poll_timeout=settings.telegram_poll_timeout,
            )
        )
    return connectors


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop`), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(settings, channel_connectors(settings))
    http = HttpServer(runtime, host=settings.http_host, port=settings.http_port)
    await http.start()
    try:
        await runtime.start()
        log.info(
            "dadang is running: http://%s:%d/healthz, channels: %s, model: %s",
            settings.http_host,
            http.port,
            ", ".join(runtime.connectors) or "none (set DADANG_TELEGRAM_TOKEN)",
            runtime.health.model or f"unreachable at {settings.llm_base_url}",
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        await runtime.stop()
        await http.stop()


async def chat(settings: Settings, *, once: str | None = None) -> None:
    """The terminal chat, in process, as the owner; other channels keep their own process."""
    terminal = TerminalConnector(files_dir=settings.home / "outbox-files")
    runtime = Runtime(settings, [terminal])
    await runtime.start()
    try:
        if once is not None:
            await terminal.say(once, message_id=f"cli-{uuid.uuid4().hex}")
            await terminal.wait_reply(settings.llm_timeout * 2)
            # The outbox may still hold a second part or the reply after an outage notice.
            async with asyncio.timeout(settings.llm_timeout * 2):
                await runtime.wait_idle()
            return
        print("Dadang terminal chat — type /exit or press Ctrl-D to leave.")
        await terminal.chat_loop()
    finally:
        await runtime.stop()
