"""Delivering the outbox: in order per chat, concurrently across chats, retried with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime

from agent.metrics import Metrics
from connectors.base import Connector, OutboundMessage
from connectors.errors import DeliveryError
from memory.outbox import OutboxStore

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 8
_IDLE_WAKE = 5.0


class OutboxDelivery:
    """Sends due outbox rows through their connectors."""

    def __init__(
        self, store: OutboxStore, connectors: dict[str, Connector], metrics: Metrics
    ) -> None:
        self._store = store
        self._connectors = connectors
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._busy_chats: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A new row was written: look at the outbox now."""
        self._wake.set()

    async def start(self) -> None:
        """Requeue rows a crash left `sending`, then start the delivery loop."""
        recovered = await self._store.recover()
        if recovered:
            log.info("re-sending %d outbox rows interrupted by a crash", recovered)
        self._task = asyncio.create_task(self._loop(), name="outbox")
        self.wake()

    async def stop(self, *, flush: float = 5.0) -> None:
        """Send what is due for up to `flush` seconds, then stop (the rest waits for next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(flush):
                while True:
                    await self._dispatch()
                    if not self._busy_chats:
                        break
                    await asyncio.wait(list(self._busy_chats.values()))
        except TimeoutError:
            log.warning("outbox not flushed in %.0f s; the rest is sent at next start", flush)
        except Exception:
            log.exception("final outbox flush failed; the rest is sent at next start")
        for task in list(self._busy_chats.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            timeout = _IDLE_WAKE
            try:
                await self._dispatch()
                next_due = await self._store.next_due_at()
                if next_due is not None:
                    timeout = max(
                        0.05, min(_IDLE_WAKE, (next_due - datetime.now(UTC)).total_seconds())
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox dispatch failed; retrying")
                self._metrics.errors.labels(kind="outbox").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()

    async def _dispatch(self) -> None:
        due = await self._store.due(channels=frozenset(self._connectors))
        by_chat: dict[tuple[str, str], list[int]] = {}
        for item_id, channel, chat_id in due:
            by_chat.setdefault((channel, chat_id), []).append(item_id)
        self._metrics.outbox_pending.set(len(due))
        for key, ids in by_chat.items():
            if key in self._busy_chats:
                continue
            self._busy_chats[key] = asyncio.create_task(self._send_chat(key, ids))

    async def _send_chat(self, key: tuple[str, str], ids: list[int]) -> None:
        try:
            for item_id in ids:
                if not await self._send_one(item_id):
                    break  # keep order: later rows of this chat wait for the failed one
        finally:
            self._busy_chats.pop(key, None)
            self.wake()

    async def _send_one(self, item_id: int) -> bool:
        entry = await self._store.claim(item_id)
        if entry is None:
            return True
        connector = self._connectors[entry.channel]
        parts = connector.split(entry.text)
        ids = list(entry.channel_message_ids)
        try:
            for index in range(entry.parts_sent, len(parts)):
                sent_id = await connector.send(
                    OutboundMessage(
                        chat_id=entry.chat_id,
                        text=parts[index],
                        reply_to=entry.reply_to_channel_message_id if index == 0 else None,
                    )
                )
                ids.append(sent_id)
                self._metrics.messages_out.labels(channel=entry.channel).inc()
                if index + 1 < len(parts):
                    await self._store.part_sent(item_id, parts_sent=index + 1, channel_ids=ids)
        except DeliveryError as exc:
            if exc.retryable and entry.attempts < _MAX_ATTEMPTS:
                delay = exc.retry_after or min(300.0, 2.0**entry.attempts) * random.uniform(0.5, 1)
                log.warning(
                    "delivery of outbox %s failed (%s); retry in %.1f s", item_id, exc, delay
                )
                await self._store.retry(item_id, error=str(exc), delay=delay)
            else:
                log.error("giving up on outbox %s: %s", item_id, exc)
                await self._store.failed(item_id, error=str(exc))
                self._metrics.errors.labels(kind="delivery").inc()
                return True
            return False
        await self._store.delivered(item_id, parts_sent=len(parts), channel_ids=ids)
        return True
