"""Delivering the outbox: in order per chat, concurrently across chats, retried with backoff.

New rows are handed over in memory the moment their transaction commits (no polling delay, no
extra query); a slow poll of the table picks up everything else — retries that came due, rows
left by a crash, and rows other processes wrote (`dadang pair approve`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random

from agent.metrics import Metrics
from connectors.base import Button, Connector, OutboundMessage
from connectors.errors import DeliveryError
from memory.artefacts import ArtefactError
from memory.files import FileStore
from memory.outbox import OutboxEntry, OutboxStore

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 8
_POLL_EVERY = 1.0
_CONFIRM_BATCH = 0.02

ChatKey = tuple[str, str]


class OutboxDelivery:
    """Sends outbox rows through their connectors."""

    def __init__(
        self,
        store: OutboxStore,
        connectors: dict[str, Connector],
        metrics: Metrics,
        *,
        files: FileStore | None = None,
    ) -> None:
        self._store = store
        self._files = files
        self._connectors = connectors
        self._metrics = metrics
        self._queues: dict[ChatKey, collections.deque[int | OutboxEntry]] = {}
        self._queued_ids: set[int] = set()
        self._busy_chats: dict[ChatKey, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        # Confirmations are written in batches: one transaction for many delivered rows.
        self._confirmations: list[tuple[int, int, list[str]]] = []
        self._confirm_task: asyncio.Task[None] | None = None

    def submit(self, item: int | OutboxEntry, *, channel: str, chat_id: str) -> None:
        """Send a committed row now (rows of one chat go out in submission order).

        `item` is a row id (the sender claims it) or an entry born claimed by this process.
        """
        if channel not in self._connectors:
            return  # another process serves that channel; it will poll the row
        key = (channel, chat_id)
        queue = self._queues.setdefault(key, collections.deque())
        item_id = item if isinstance(item, int) else item.id
        if item_id in self._queued_ids:
            return
        self._queued_ids.add(item_id)
        queue.append(item)
        if key not in self._busy_chats:
            self._busy_chats[key] = asyncio.create_task(self._send_chat(key))

    async def start(self) -> None:
        """Requeue rows a crash left `sending`, then start polling for due rows."""
        recovered = await self._store.recover()
        if recovered:
            log.info("re-sending %d outbox rows interrupted by a crash", recovered)
        self._task = asyncio.create_task(self._loop(), name="outbox")

    async def stop(self, *, flush: float = 5.0) -> None:
        """Send what is due for up to `flush` seconds, then stop (the rest waits for next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(flush):
                await self._poll()
                while self._busy_chats:
                    await asyncio.wait(list(self._busy_chats.values()))
        except TimeoutError:
            log.warning("outbox not flushed in %.0f s; the rest is sent at next start", flush)
        except Exception:
            log.exception("final outbox flush failed; the rest is sent at next start")
        for task in list(self._busy_chats.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._confirm_task is not None:
            with contextlib.suppress(Exception):
                await self._confirm_task
        if self._confirmations:
            await self._store.delivered_many(self._confirmations)
            self._confirmations = []

    async def _loop(self) -> None:
        while True:
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox poll failed; retrying")
                self._metrics.errors.labels(kind="outbox").inc()
            await asyncio.sleep(_POLL_EVERY)

    async def _poll(self) -> None:
        due = await self._store.due(channels=frozenset(self._connectors))
        self._metrics.outbox_pending.set(len(due))
        for item_id, channel, chat_id in due:
            self.submit(item_id, channel=channel, chat_id=chat_id)

    async def _send_chat(self, key: ChatKey) -> None:
        queue = self._queues[key]
        try:
            while queue:
                item = queue[0]
                delivered = await self._send_one(item)
                if delivered:
                    queue.popleft()
                    self._queued_ids.discard(item if isinstance(item, int) else item.id)
                else:
                    # Keep order: the failed row and everything after it wait for the poll,
                    # which finds them again once the retry is due; rows born claimed are put
                    # back to pending first, or the poll would never see them.
                    failed_id = item if isinstance(item, int) else item.id
                    claimed: list[int] = []
                    for dropped in queue:
                        dropped_id = dropped if isinstance(dropped, int) else dropped.id
                        self._queued_ids.discard(dropped_id)
                        if not isinstance(dropped, int) and dropped_id != failed_id:
                            claimed.append(dropped_id)
                    queue.clear()
                    await self._store.release(claimed, behind=failed_id)
        finally:
            self._busy_chats.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    def _confirm(self, item_id: int, parts: int, ids: list[str]) -> None:
        self._confirmations.append((item_id, parts, ids))
        if self._confirm_task is None or self._confirm_task.done():
            self._confirm_task = asyncio.create_task(self._write_confirmations())

    async def _write_confirmations(self) -> None:
        # A crash before this write leaves rows `sending`: they are re-sent once at next start.
        await asyncio.sleep(_CONFIRM_BATCH)
        while self._confirmations:
            batch, self._confirmations = self._confirmations, []
            try:
                await self._store.delivered_many(batch)
            except Exception:
                log.exception("could not record %d deliveries; retrying", len(batch))
                self._confirmations[:0] = batch
                await asyncio.sleep(1.0)

    async def _send_one(self, item: int | OutboxEntry) -> bool:
        """Deliver one row; False when it was put back for a later retry."""
        entry = await self._store.claim(item) if isinstance(item, int) else item
        if entry is None:
            return True  # delivered or taken meanwhile
        item_id = entry.id
        connector = self._connectors[entry.channel]
        # A file is one part whatever its caption: the caption is cut, never split.
        parts = [entry.text] if entry.file_id is not None else connector.split(entry.text)
        ids = list(entry.channel_message_ids)
        try:
            for index in range(entry.parts_sent, len(parts)):
                if entry.file_id is not None:
                    ids.append(await self._send_file(connector, entry, entry.file_id))
                    break
                sent_id = await connector.send(
                    OutboundMessage(
                        chat_id=entry.chat_id,
                        text=parts[index],
                        reply_to=entry.reply_to_channel_message_id if index == 0 else None,
                        buttons=[
                            [Button(label=label, data=data) for label, data in row]
                            for row in entry.buttons
                        ]
                        if index == len(parts) - 1
                        else [],
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
                return False
            log.error("giving up on outbox %s: %s", item_id, exc)
            await self._store.failed(item_id, error=str(exc))
            self._metrics.errors.labels(kind="delivery").inc()
            return True
        self._confirm(item_id, len(parts), ids)
        return True

    async def _send_file(self, connector: Connector, entry: OutboxEntry, file_id: int) -> str:
        """Send a stored file; a deleted or damaged one fails the row for good (no retry)."""
        try:
            found = await self._files.for_delivery(file_id) if self._files is not None else None
        except ArtefactError as exc:
            raise DeliveryError(f"file #{file_id} cannot be read: {exc}", retryable=False) from exc
        if found is None:
            raise DeliveryError(
                f"file #{file_id} was deleted (or file storage is off) before it was sent",
                retryable=False,
            )
        record, data = found
        sent_id = await connector.send_file(
            entry.chat_id, name=record.name, data=data, caption=entry.text
        )
        self._metrics.messages_out.labels(channel=entry.channel).inc()
        return sent_id
