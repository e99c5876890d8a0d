"""Running one inbound message through the graph, and what happens when that fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from agent.graph.builder import TurnGraph, thread_id
from agent.graph.state import TurnDeps, TurnState
from agent.llm import ModelError, ModelRequestError, ModelUnavailable
from agent.metrics import Metrics
from agent.policy.approvals import ApprovalDesk
from agent.runtime.attachments import AttachmentIntake
from agent.runtime.health import ModelHealth
from agent.runtime.replies import language_of, reply
from connectors.base import Connector
from memory.conversations import ConversationStore, InboundRecord, Usage
from memory.files import FileStore
from memory.identities import IdentityStore
from memory.models import MessageStatus
from memory.outbox import OutboxStore

log = logging.getLogger(__name__)

_TYPING_EVERY = 4.5
_TYPING_AFTER = 1.0
_PROFILE_TTL = 60.0


@dataclass(kw_only=True)
class TurnRunner:
    """Processes one inbound message to exactly one stored reply."""

    graph: TurnGraph
    deps: TurnDeps
    conversations: ConversationStore
    identities: IdentityStore
    outbox: OutboxStore
    health: ModelHealth
    metrics: Metrics
    connectors: dict[str, Connector]
    default_timezone: str
    deliver: Callable[..., None]
    """`OutboxDelivery.submit`: hands a committed outbox row to the sender."""
    reflect: Callable[[int], None] | None = None
    """`Reflector.submit` when memory extraction is on."""
    approvals: ApprovalDesk | None = None
    """Where a turn paused by the policy goes to ask its user."""
    files: FileStore | None = None
    """Where attachments are stored before the turn (None: they are not fetched)."""

    def __post_init__(self) -> None:
        self._intake = (
            AttachmentIntake(
                files=self.files,
                connectors=self.connectors,
                conversations=self.conversations,
                outbox=self.outbox,
                deliver=self.deliver,
            )
            if self.files is not None
            else None
        )
        # Conversations told "the model is unavailable" during the current outage: told once.
        self._notified: set[int] = set()
        # (name, time zone) per user, re-read after a minute so profile edits show up soon.
        self._profiles: dict[int, tuple[float, str, str]] = {}
        # Threads whose last turn finished: their checkpoints are no longer needed.
        self._prunable: set[str] = set()

    async def prune_checkpoints(self) -> int:
        """Delete checkpoints of finished turns (history lives in `messages`); returns how many.

        Done in batches off the hot path; a thread whose next turn started meanwhile is kept.
        """
        checkpointer = self.graph.checkpointer
        if checkpointer is None or isinstance(checkpointer, bool):
            return 0
        threads, self._prunable = self._prunable, set()
        for thread in threads:
            await checkpointer.adelete_thread(thread)
        return len(threads)

    async def __call__(self, record: InboundRecord) -> None:
        """Answer `record`, waiting out model outages; never drops or duplicates the reply."""
        if self._intake is not None:
            # Files are taken even while the model is down: the channel's link may expire.
            record = await self._intake.prepare(record)
        while True:
            if not self.health.is_up:
                await self._tell_unavailable(record)
                await self.health.wait_up()
            try:
                await self._turn(record)
            except ModelUnavailable as exc:
                self.health.mark_down(str(exc))
                self.metrics.errors.labels(kind="model_unavailable").inc()
                continue
            except ModelRequestError as exc:
                await self._fail(record, reason=f"the model refused the request: {exc.status}")
            except ModelError as exc:
                log.warning("turn for message %s failed: %s", record.message_id, exc)
                await self._fail(record, reason="the model's answer was unreadable")
            self._notified.discard(record.conversation_id)
            return

    async def _turn(self, record: InboundRecord) -> None:
        started = time.perf_counter()
        name, timezone = await self._profile(record.user_id)
        state: TurnState = {
            "inbound_id": record.message_id,
            "user_id": record.user_id,
            "conversation_id": record.conversation_id,
            "channel": record.channel,
            "chat_id": record.chat_id,
            "user_name": name,
            "timezone": timezone,
            "text": record.text,
        }
        thread = thread_id(record.message_id)
        self._prunable.discard(thread)
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        # A turn that paused for an approval continues from its checkpoint, not from scratch.
        snapshot = await self.graph.aget_state(config)
        start: TurnState | Command[bool] = Command(resume=True) if snapshot.interrupts else state
        typing = asyncio.create_task(self._typing(record))
        try:
            result = await self.graph.ainvoke(
                start,
                config,
                context=self.deps,
                durability="exit",
            )
        finally:
            typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await typing
        self.health.mark_up()
        interrupts = result.get("__interrupt__")
        if interrupts:
            if self.approvals is None:
                raise RuntimeError("the policy asked for an approval but no desk is wired")
            await self.approvals.open(record, interrupts[0].value)
            return
        entry = await self.conversations.complete(
            record,
            reply=str(result.get("reply") or ""),
            usage=Usage(
                prompt_tokens=int(result.get("prompt_tokens") or 0),
                completion_tokens=int(result.get("completion_tokens") or 0),
            ),
            reflect=self.reflect is not None,
        )
        if entry is not None and self.reflect is not None:
            self.reflect(record.message_id)
        self.metrics.turn_latency.observe(time.perf_counter() - started)
        if entry is not None:
            self.deliver(entry, channel=record.channel, chat_id=record.chat_id)
        self._prunable.add(thread)

    async def _profile(self, user_id: int) -> tuple[str, str]:
        cached = self._profiles.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < _PROFILE_TTL:
            return cached[1], cached[2]
        user = await self.identities.get_user(user_id)
        name = user.name if user else "the user"
        timezone = user.timezone if user and user.timezone else self.default_timezone
        self._profiles[user_id] = (time.monotonic(), name, timezone)
        return name, timezone

    async def _typing(self, record: InboundRecord) -> None:
        connector = self.connectors.get(record.channel)
        if connector is None:
            return
        # A quick answer needs no indicator; only turns that take a while show "typing…".
        await asyncio.sleep(_TYPING_AFTER)
        while True:
            await connector.typing(record.chat_id)
            await asyncio.sleep(_TYPING_EVERY)

    async def _tell_unavailable(self, record: InboundRecord) -> None:
        if record.conversation_id in self._notified:
            return
        self._notified.add(record.conversation_id)
        item = await self.outbox.add(
            channel=record.channel,
            chat_id=record.chat_id,
            text=reply("unavailable", language_of(record.text)),
            conversation_id=record.conversation_id,
            claimed=True,
        )
        self.deliver(item, channel=record.channel, chat_id=record.chat_id)

    async def _fail(self, record: InboundRecord, *, reason: str) -> None:
        self.metrics.errors.labels(kind="turn_failed").inc()
        item = await self.conversations.complete(
            record,
            reply=reply("failed", language_of(record.text), reason=reason),
            usage=Usage(),
            status=MessageStatus.FAILED,
        )
        if item is not None:
            self.deliver(item, channel=record.channel, chat_id=record.chat_id)
