"""The runtime: wires storage, model, graph, connectors and delivery into one process.

Flow of a message: connector → `submit` (identity, pairing, dedupe, persist) → conversation queue
→ `TurnRunner` (graph) → reply + outbox row in one transaction → `OutboxDelivery` → connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from agent.graph.builder import build_graph, open_checkpointer
from agent.graph.state import TurnDeps
from agent.llm import LLMClient
from agent.memory_setup import build_memory
from agent.metrics import Metrics
from agent.policy.approvals import ApprovalDesk
from agent.policy.engine import PolicyEngine
from agent.policy.limits import RateLimiter
from agent.policy.rules import Policy
from agent.proactive.controls import ProactiveControls
from agent.proactive.service import Proactivity
from agent.reflect import Reflector
from agent.runtime.admission import Doorkeeper
from agent.runtime.attachments import admission_text
from agent.runtime.delivery import OutboxDelivery
from agent.runtime.health import ModelHealth
from agent.runtime.progress import ChatProgress
from agent.runtime.queues import ConversationQueues
from agent.runtime.replies import language_of, reply
from agent.runtime.secret_access import StoredSecrets
from agent.runtime.turns import TurnRunner
from agent.settings import Settings
from agent.tool_setup import add_mcp_tools, build_tools
from automation.tools.file_access import FileAccess
from connectors.base import Admission, Connector, InboundMessage
from memory import segment
from memory.approvals import ApprovalStore
from memory.audit import AuditLog
from memory.conversations import ConversationStore, InboundRecord
from memory.db import Database, open_database
from memory.files import MB, FileStore
from memory.grants import GrantStore
from memory.identities import IdentityStore
from memory.models import MessageStatus
from memory.outbox import OutboxEntry, OutboxStore
from memory.reflections import ReflectionStore
from memory.reminders import ReminderRecord
from memory.tool_access import ToolAccess

log = logging.getLogger(__name__)

_KNOWN_COMMANDS = frozenset({"start", "help", "memory", "pause", "resume"})
_PRUNE_EVERY = 30.0
_APPROVALS_EVERY = 5.0


@dataclass(frozen=True, kw_only=True)
class Stores:
    """The storage handles the runtime uses."""

    db: Database
    identities: IdentityStore
    conversations: ConversationStore
    outbox: OutboxStore


class Runtime:
    """One running assistant: start it, feed it messages, stop it."""

    def __init__(self, settings: Settings, connectors: list[Connector]) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.connectors = {c.id: c for c in connectors}
        db = open_database(settings.effective_database_url)
        self.stores = Stores(
            db=db,
            identities=IdentityStore(db),
            conversations=ConversationStore(db),
            outbox=OutboxStore(db),
        )
        self.llm = LLMClient(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout=settings.llm_timeout,
            connect_timeout=settings.llm_connect_timeout,
            max_retries=settings.llm_max_retries,
            observer=self.metrics.observe_llm,
        )
        self.memory = build_memory(settings, db)
        self.reflections = ReflectionStore(db)
        self.reflector: Reflector | None = None
        self._memory_task: asyncio.Task[None] | None = None
        # A broken policy file stops the start here, with the line to fix (fail closed).
        self.policy = Policy.load(settings.home, create=True)
        self.audit = AuditLog(db)
        self.grants = GrantStore(db, self.audit)
        self.message_limit = RateLimiter(limit=settings.rate_messages_per_minute, window=60.0)
        self.health = ModelHealth(self.llm)
        self.files = FileStore(db, settings.home / "files", quota_bytes=settings.files_max_mb * MB)
        self.delivery = OutboxDelivery(
            self.stores.outbox, self.connectors, self.metrics, files=self.files
        )
        self.doorkeeper = Doorkeeper(
            settings=settings,
            identities=self.stores.identities,
            conversations=self.stores.conversations,
            outbox=self.stores.outbox,
            delivery=self.delivery,
            metrics=self.metrics,
        )
        push = frozenset(self.connectors) - {"cli"} or frozenset(self.connectors)
        self.proactive = Proactivity(
            settings,
            db,
            push_channels=push,
            deliver=self._deliver_entry,
            run_task=self._run_task,
            llm=self.llm,
            embedder=self.memory.embedder,
            calendar_scope=self.policy.scopes.allows_calendar,
            on_leadership=self._receive,
        )
        if settings.scheduler:
            # Replicas elect one leader through the database; only it receives (Telegram allows
            # one long poll per token). Without the election (scheduler off) this one receives.
            self._receive(False)
        self.controls = ProactiveControls(self.proactive, self.memory)
        self.progress = ChatProgress(self.connectors)
        self._secrets = StoredSecrets(db, settings)
        self.tools = build_tools(settings, self.policy.scopes, resolve_secret=self._secrets)
        self._stack = AsyncExitStack()
        self._queues: ConversationQueues | None = None
        self._started_connectors: list[Connector] = []
        self.connector_errors: dict[str, str] = {}
        self._runner: TurnRunner | None = None
        self._janitor: asyncio.Task[None] | None = None
        self._approval_loop: asyncio.Task[None] | None = None
        self.approvals = ApprovalDesk(
            ApprovalStore(db, self.audit),
            conversations=self.stores.conversations,
            outbox=self.stores.outbox,
            connectors=self.connectors,
            deliver=self._deliver_entry,
            requeue=self._requeue,
            memory=self.memory,
            expire_after=timedelta(minutes=self.policy.rules.approvals.expire_minutes),
            timezone=self._timezone,
        )

    async def start(self) -> None:
        """Open the checkpointer, recover unfinished work, start delivery and the connectors."""
        owner = await self.stores.identities.ensure_owner(name=self.settings.owner_name)
        mcp = await add_mcp_tools(
            self.tools, self.settings, resolve_secret=self._secrets, owner_id=owner.id
        )
        if mcp is not None:
            self._stack.push_async_callback(mcp.close)
        checkpointer = await self._stack.enter_async_context(open_checkpointer(self.stores.db.url))
        graph = build_graph(checkpointer)
        deps = TurnDeps(
            llm=self.llm,
            tools=self.tools,
            db=self.stores.db,
            conversations=self.stores.conversations,
            history_messages=self.settings.history_messages,
            max_tool_steps=self.settings.max_tool_steps,
            turn_time_budget=self.settings.turn_time_budget,
            tool_timeout=self.settings.tool_timeout,
            progress=self.progress.board,
            thinking=self.settings.llm_thinking,
            stream=self.settings.llm_stream,
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
            memory=self.memory,
            recall_limit=self.settings.memory_recall_limit,
            prompt_budget=self.settings.prompt_budget_tokens,
            tools_prompt_budget=self.settings.tools_prompt_budget,
            reminders=self.proactive.reminders,
            calendar=self.proactive.calendar,
            calendar_user=owner.id,
            calendar_write=self.settings.calendar_write,
            audit=self.audit,
            policy=PolicyEngine(self.policy, self.grants),
            approvals=self.approvals.store,
            tool_limit=RateLimiter(limit=self.settings.rate_tool_calls_per_hour, window=3600.0),
            scopes=self.policy.scopes,
            files=FileAccess(
                store=self.files, outbox=self.stores.outbox, deliver=self._deliver_entry
            ),
            log_prompts=self.policy.rules.audit.log_prompts,
            tool_access=ToolAccess(self.stores.db, self.audit),
            owner_id=owner.id,
        )
        await self.grants.record_policy(self.policy.digest, self.policy.text, source="service")
        if self.settings.memory_reflect:
            self.reflector = Reflector(
                llm=self.llm,
                health=self.health,
                memory=self.memory,
                conversations=self.stores.conversations,
                reflections=self.reflections,
                timezone=self.settings.timezone,
                keep_recent=self.settings.history_messages,
                audit=self.audit,
            )
        runner = TurnRunner(
            graph=graph,
            deps=deps,
            conversations=self.stores.conversations,
            identities=self.stores.identities,
            outbox=self.stores.outbox,
            health=self.health,
            metrics=self.metrics,
            connectors=self.connectors,
            default_timezone=self.settings.timezone,
            deliver=self.delivery.submit,
            reflect=self.reflector.submit if self.reflector else None,
            approvals=self.approvals,
            files=self.files,
        )
        self._runner = runner
        self._queues = ConversationQueues(runner, max_concurrent=self.settings.max_concurrent_turns)
        # The vector index and models load in the background: recall uses keywords until then.
        self._memory_task = asyncio.create_task(self._start_memory(), name="memory-start")
        await self.health.start()
        await self.delivery.start()
        await self.proactive.start()
        if self.reflector is not None:
            await self.reflector.start()
        self._janitor = asyncio.create_task(self._prune_periodically(), name="checkpoint-janitor")
        pending = await self._admitted(
            await self.stores.conversations.pending(channels=frozenset(self.connectors))
        )
        if pending:
            log.info("requeueing %d unanswered messages", len(pending))
            await self.stores.conversations.count_requeue([r.message_id for r in pending])
        for record in pending:
            self._queues.submit(record)
        self._update_depth()
        # Turns whose approval was decided while the service was down continue now.
        await self.approvals.tick()
        self._approval_loop = asyncio.create_task(self._tick_approvals(), name="approvals")
        for connector in self.connectors.values():
            try:
                await connector.start(self.submit)
            except Exception as exc:  # one broken channel must not take the others down
                log.error("connector %s did not start: %s", connector.id, exc)
                self.connector_errors[connector.id] = str(exc)
                self.metrics.errors.labels(kind=f"connector_{connector.id}").inc()
                continue
            self._started_connectors.append(connector)

    async def stop(self) -> None:
        """Stop input, let in-flight turns finish (or requeue them), flush the outbox, close."""
        for connector in self._started_connectors:
            try:
                await connector.pause()
            except Exception:
                log.exception("connector %s did not pause cleanly", connector.id)
        if self._queues is not None:
            cancelled = await self._queues.drain(grace=self.settings.shutdown_grace)
            if cancelled:
                log.info("%d turns interrupted; they will run again at next start", cancelled)
        if self.reflector is not None:
            await self.reflector.stop()
        await self.proactive.stop()
        await self.delivery.stop()
        if self._memory_task is not None and not self._memory_task.done():
            self._memory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._memory_task
        await self.memory.close()
        for task in (self._janitor, self._approval_loop):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._runner is not None:
            await self._runner.prune_checkpoints()
        for connector in reversed(self._started_connectors):
            try:
                await connector.stop()
            except Exception:
                log.exception("connector %s did not stop cleanly", connector.id)
        self._started_connectors.clear()
        await self.health.stop()
        await self._stack.aclose()
        await self.llm.aclose()
        await self.stores.db.dispose()

    async def _start_memory(self) -> None:
        try:
            await asyncio.to_thread(segment.warm_up)
            await self.memory.start()
            warm_up = getattr(self.memory.embedder, "warm_up", None)
            if callable(warm_up):
                await warm_up()
        except Exception:
            log.exception("memory index could not start; recall uses keywords only")

    async def _prune_periodically(self) -> None:
        while True:
            await asyncio.sleep(_PRUNE_EVERY)
            if self._runner is None:
                continue
            try:
                await self._runner.prune_checkpoints()
            except Exception:
                log.exception("pruning finished checkpoints failed; will retry")
            if self.memory.stale:
                # An index write failed (embeddings endpoint down?): catch up from the database.
                await self.memory.repair()

    async def _admitted(self, records: list[InboundRecord]) -> list[InboundRecord]:
        """Unanswered messages whose sender still has access; a revoked person's are refused."""
        kept: list[InboundRecord] = []
        for record in records:
            if await self.stores.identities.admitted(record.user_id, record.channel):
                kept.append(record)
            else:
                await self.stores.conversations.set_status(
                    record.message_id, MessageStatus.REJECTED
                )
        return kept

    async def _tick_approvals(self) -> None:
        while True:
            await asyncio.sleep(_APPROVALS_EVERY)
            try:
                await self.approvals.tick()
            except Exception:
                log.exception("expiring or resuming approvals failed; will retry")

    def _requeue(self, record: InboundRecord) -> None:
        if self._queues is not None:
            self._queues.submit(record)
            self._update_depth()

    @property
    def queue_depth(self) -> int:
        """Messages waiting or in progress."""
        return self._queues.depth if self._queues else 0

    def _update_depth(self) -> None:
        self.metrics.queue_depth.set(self.queue_depth)

    async def submit(self, message: InboundMessage) -> Admission:
        """Admit one inbound message; returns once it is durably stored (safe to acknowledge)."""
        user_id = await self.doorkeeper.resolve_user(message)
        if message.callback is not None:
            return await self._press(message, user_id)
        if user_id is None:
            return await self.doorkeeper.pairing(message)
        language = language_of(message.text, message.language_code)
        if message.command and message.command not in _KNOWN_COMMANDS | {"unsupported"}:
            return await self.doorkeeper.notice(
                message, user_id, reply("unknown_command", language, command=message.command)
            )
        if message.command == "memory":
            return await self.doorkeeper.notice(
                message, user_id, await self._memory_listing(user_id, language)
            )
        if message.command in ("pause", "resume"):
            tz = await self._timezone(user_id)
            text = (
                await self.controls.pause(user_id, tz, language)
                if message.command == "pause"
                else await self.controls.resume(user_id, language)
            )
            return await self.doorkeeper.notice(message, user_id, text)
        if message.command in _KNOWN_COMMANDS or message.command == "unsupported":
            key = message.command or "unsupported"
            return await self.doorkeeper.notice(message, user_id, reply(key, language))
        limited = self.message_limit.hit(user_id)
        if limited is not None:
            return await self.doorkeeper.rate_limited(message, user_id, language, limited)
        if len(message.text) > self.settings.max_inbound_chars:
            return await self.doorkeeper.notice(
                message,
                user_id,
                reply(
                    "too_long",
                    language,
                    length=len(message.text),
                    limit=self.settings.max_inbound_chars,
                ),
            )
        record = await self.stores.conversations.record_inbound(
            user_id=user_id,
            channel=message.channel,
            chat_id=message.chat_id,
            text=admission_text(message),
            channel_message_id=message.channel_message_id,
        )
        if record is None:
            return Admission.DUPLICATE
        self.metrics.messages_in.labels(channel=message.channel).inc()
        if self._queues is not None:
            self._queues.submit(record)
        self._update_depth()
        return Admission.QUEUED

    async def _press(self, message: InboundMessage, user_id: int | None) -> Admission:
        connector = self.connectors.get(message.channel)
        if connector is None or message.callback is None:
            return Admission.REFUSED
        if user_id is None:  # strangers' presses do nothing (and start no pairing)
            await connector.answer_callback(message.callback.id)
            return Admission.REFUSED
        if await self.approvals.press(message, user_id, connector):
            return Admission.HANDLED
        tz = await self._timezone(user_id)
        await self.controls.press(message, user_id, tz, connector)
        return Admission.HANDLED

    async def _timezone(self, user_id: int) -> ZoneInfo:
        user = await self.stores.identities.get_user(user_id)
        return ZoneInfo((user.timezone if user else None) or self.settings.timezone)

    def _receive(self, active: bool) -> None:
        for connector in self.connectors.values():
            connector.receive(active)

    def _deliver_entry(self, entry: OutboxEntry) -> None:
        self.delivery.submit(entry, channel=entry.channel, chat_id=entry.chat_id)

    async def _run_task(
        self, reminder: ReminderRecord, channel: str, chat_id: str, dedupe: str
    ) -> None:
        """A scheduled agent task becomes an inbound message, answered by the normal graph."""
        record = await self.stores.conversations.record_inbound(
            user_id=reminder.user_id,
            channel=channel,
            chat_id=chat_id,
            text=f"[scheduled task #{reminder.id}, set by the user] {reminder.text}",
            channel_message_id=dedupe,
        )
        if record is not None and self._queues is not None:
            self._queues.submit(record)
            self._update_depth()

    async def _memory_listing(self, user_id: int, language: str) -> str:
        """What `/memory` shows: current memories, newest first, with their ids."""
        records = await self.memory.store.recent(user_id, limit=30)
        if not records:
            return reply("memory_empty", language)
        lines = [f"#{m.id} [{m.kind}] {m.valid_from:%Y-%m-%d} {m.content}" for m in records]
        return reply("memory_list", language, count=len(records)) + "\n" + "\n".join(lines)

    async def wait_idle(self) -> None:
        """Wait until no turn is queued or running (wrap in `asyncio.timeout`)."""
        while self.queue_depth:  # noqa: ASYNC110 - depth changes in many places; polling is simplest
            await asyncio.sleep(0.02)
