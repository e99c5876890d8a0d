"""Per-conversation ordering with cross-conversation concurrency.

Each conversation has its own FIFO and at most one worker, so its messages are answered in order;
workers of different conversations run concurrently, bounded by a semaphore, so one slow model
call never holds up another chat.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

from memory.conversations import InboundRecord

log = logging.getLogger(__name__)

Handler = Callable[[InboundRecord], Awaitable[None]]


class ConversationQueues:
    """Dispatches inbound records to `handler`, one at a time per conversation."""

    def __init__(self, handler: Handler, *, max_concurrent: int) -> None:
        self._handler = handler
        self._limit = asyncio.Semaphore(max_concurrent)
        self._queues: dict[int, collections.deque[InboundRecord]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._queued_ids: set[int] = set()
        self._closed = False

    @property
    def depth(self) -> int:
        """Messages waiting or being processed."""
        return len(self._queued_ids)

    def submit(self, record: InboundRecord) -> bool:
        """Queue a message; False if it is already queued or the queues are closed."""
        if self._closed or record.message_id in self._queued_ids:
            return False
        self._queued_ids.add(record.message_id)
        self._queues.setdefault(record.conversation_id, collections.deque()).append(record)
        if record.conversation_id not in self._workers:
            self._workers[record.conversation_id] = asyncio.create_task(
                self._work(record.conversation_id), name=f"conversation-{record.conversation_id}"
            )
        return True

    async def _work(self, conversation_id: int) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue and not self._closed:
                record = queue[0]
                async with self._limit:
                    try:
                        await self._handler(record)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("turn for message %s crashed", record.message_id)
                queue.popleft()
                self._queued_ids.discard(record.message_id)
        finally:
            self._workers.pop(conversation_id, None)
            if not queue:
                self._queues.pop(conversation_id, None)

    async def drain(self, *, grace: float) -> int:
        """Stop taking work, let running turns finish for `grace` seconds, then cancel the rest.

        Cancelled turns leave their messages pending in the database; they run again at the next
        start. Returns how many workers had to be cancelled.
        """
        self._closed = True
        workers = list(self._workers.values())
        if not workers:
            return 0
        _, pending = await asyncio.wait(workers, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return len(pending)
