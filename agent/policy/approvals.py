"""The approval desk: turns a paused turn into a request with buttons, and answers into resumes.

Flow: `gate` interrupts → the runner calls `open` (request row + message in one transaction,
the inbound message `waiting`) → the user presses a button (`press`), answers in the terminal,
calls the HTTP API or the owner runs `dadang approvals` → the row is decided once → `resume`
puts the message back on its conversation's queue and the runner resumes the thread where it
stopped. `tick` expires unanswered requests and resumes turns whose decision was made elsewhere
(another process, or before a crash), so every path ends in exactly one resumed turn.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.runtime.replies import language_of, reply
from connectors.base import Connector, InboundMessage
from memory.approvals import APPROVED, REJECTED, ApprovalRecord, ApprovalStore, NewApproval
from memory.conversations import ConversationStore, InboundRecord
from memory.memories import NewMemory
from memory.models import MemoryKind
from memory.outbox import OutboxEntry, OutboxStore
from memory.service import MemoryService
from memory.types import utcnow

log = logging.getLogger(__name__)

_DATA = re.compile(r"^a:(\d+):(ok|no|always)$")
_ARGUMENTS_SHOWN = 600


def describe(tool: str, risk: str, target: str, arguments: str) -> str:
    """What exactly will happen, as the request shows it."""
    try:
        shown = json.dumps(json.loads(arguments), ensure_ascii=False, sort_keys=True)
    except (json.JSONDecodeError, TypeError):
        shown = arguments
    if len(shown) > _ARGUMENTS_SHOWN:
        shown = shown[:_ARGUMENTS_SHOWN] + "…"
    lines = [f"• {tool} ({risk})"]
    if target:
        lines.append(f"• → {target}")
    lines.append(f"• {shown}")
    return "\n".join(lines)


class ApprovalDesk:
    """Opens, decides, expires and resumes approval requests."""

    def __init__(
        self,
        store: ApprovalStore,
        *,
        conversations: ConversationStore,
        outbox: OutboxStore,
        connectors: dict[str, Connector],
        deliver: Callable[[OutboxEntry], None],
        requeue: Callable[[InboundRecord], None],
        memory: MemoryService | None,
        expire_after: timedelta,
        timezone: Callable[[int], Any],
    ) -> None:
        self.store = store
        self._conversations = conversations
        self._outbox = outbox
        self._connectors = connectors
        self._deliver = deliver
        self._requeue = requeue
        self._memory = memory
        self._expire_after = expire_after
        self._timezone = timezone

    async def open(self, record: InboundRecord, payload: dict[str, Any]) -> ApprovalRecord:
        """Ask the user about one paused call (idempotent: a re-run finds its request)."""
        language = language_of(record.text)
        expires = utcnow() + self._expire_after
        tz: ZoneInfo = await self._timezone(record.user_id)
        new = NewApproval(
            user_id=record.user_id,
            message_id=record.message_id,
            call_id=str(payload["call_id"]),
            tool=str(payload["tool"]),
            risk=str(payload["risk"]),
            target=str(payload.get("target") or ""),
            grant_target=str(payload.get("grant_target") or ""),
            arguments=str(payload.get("arguments") or "{}"),
            reason=str(payload.get("reason") or ""),
            channel=record.channel,
            chat_id=record.chat_id,
            expires_at=expires,
        )

        def render(approval_id: int) -> tuple[str, list[list[tuple[str, str]]]]:
            text = reply(
                "approval_request",
                language,
                what=describe(new.tool, new.risk, new.target, new.arguments),
                reason=new.reason,
                expires=f"{expires.astimezone(tz):%Y-%m-%d %H:%M}",
            )
            rows = [
                [
                    (reply("approve", language), f"a:{approval_id}:ok"),
                    (reply("reject", language), f"a:{approval_id}:no"),
                ]
            ]
            if payload.get("may_always_allow"):
                rows.append([(reply("always", language), f"a:{approval_id}:always")])
            return text, rows

        approval, entry = await self.store.request(new, render)
        if entry is not None:
            self._deliver(entry)
        return approval

    async def press(self, message: InboundMessage, user_id: int, connector: Connector) -> bool:
        """Handle an `a:` button; False when the press is not an approval button."""
        assert message.callback is not None
        callback = message.callback
        match = _DATA.match(callback.data)
        if match is None:
            return False
        approval_id, action = int(match.group(1)), match.group(2)
        language = language_of("", message.language_code)
        record, changed = await self.store.decide(
            approval_id,
            approve=action != "no",
            always=action == "always",
            via=message.channel,
            user_id=user_id,
        )
        if record is None:
            await connector.answer_callback(callback.id, reply("approval_unknown", language))
            return True
        language = await self._language(record, message.language_code)
        if not changed:
            notice = reply("approval_stale", language, status=record.status)
            await connector.answer_callback(callback.id, notice)
            return True
        ack = self._outcome(record, language)
        await connector.answer_callback(callback.id, ack[:190])
        if callback.message_id is not None:
            original = await self._request_text(record)
            await connector.edit(message.chat_id, callback.message_id, f"{original}\n\n{ack}")
        await self._after_decision(record)
        return True

    async def decide(
        self, approval_id: int, *, approve: bool, via: str, user_id: int | None, always: bool
    ) -> tuple[ApprovalRecord | None, bool]:
        """A decision from the terminal, the HTTP API or the CLI; resumes the turn."""
        record, changed = await self.store.decide(
            approval_id, approve=approve, via=via, user_id=user_id, always=always
        )
        if record is not None and changed:
            await self._edit_request(record)
            await self._after_decision(record)
        return record, changed

    async def tick(self) -> int:
        """Expire overdue requests and resume every decided turn still waiting; returns how many."""
        for record in await self.store.expire_due():
            await self._edit_request(record)
        resumed = 0
        for message_id in await self.store.decided_waiting():
            resumed += await self.resume(message_id)
        return resumed

    async def resume(self, message_id: int) -> bool:
        """Put a decided turn back on its queue (once, however many callers try).

        Rejections are remembered here, on the one path every decision takes (buttons, the API,
        the CLI in another process, expiry), so none is missed and none is stored twice.
        """
        if not await self.store.wake(message_id):
            return False
        if self._memory is not None:
            for approval in await self.store.for_message(message_id):
                if approval.status == REJECTED:
                    await self._remember_rejection(approval)
        record = await self._conversations.inbound(message_id)
        if record is not None:
            self._requeue(record)
        return True

    async def _after_decision(self, record: ApprovalRecord) -> None:
        await self.resume(record.message_id)

    async def _remember_rejection(self, record: ApprovalRecord) -> None:
        # Reflection learns preferences from chat; a rejected button press has no chat text,
        # so the proposal is written down here, where it is known exactly.
        assert self._memory is not None
        external_id = f"approval:{record.id}"
        if await self._memory.store.by_external_id(record.user_id, external_id) is not None:
            return
        what = describe(record.tool, record.risk, record.target, record.arguments)
        what = " ".join(line.lstrip("• ") for line in what.splitlines())
        try:
            await self._memory.remember(
                record.user_id,
                NewMemory(
                    content=f"Rejected the proposal to run {what}",
                    kind=MemoryKind.REJECTED_PROPOSAL,
                    importance=0.6,
                    confidence=1.0,
                    source_message_ids=[record.message_id],
                    external_id=external_id,
                ),
            )
        except Exception:
            log.exception("could not remember rejected approval %s", record.id)

    async def _edit_request(self, record: ApprovalRecord) -> None:
        connector = self._connectors.get(record.channel)
        if connector is None or record.outbox_id is None:
            return
        ids = await self._outbox.sent_ids(record.outbox_id)
        if not ids:
            return
        language = await self._language(record, None)
        original = await self._request_text(record)
        try:
            await connector.edit(
                record.chat_id, ids[-1], f"{original}\n\n{self._outcome(record, language)}"
            )
        except Exception:
            log.warning("could not update approval request %s in %s", record.id, record.channel)

    async def _request_text(self, record: ApprovalRecord) -> str:
        return describe(record.tool, record.risk, record.target, record.arguments)

    async def _language(self, record: ApprovalRecord, hint: str | None) -> str:
        inbound = await self._conversations.inbound(record.message_id)
        return language_of(inbound.text if inbound else "", hint)

    @staticmethod
    def _outcome(record: ApprovalRecord, language: str) -> str:
        if record.status == APPROVED:
            return reply("approved_always" if record.always else "approved", language)
        if record.status == REJECTED:
            return reply("rejected", language)
        return reply("expired", language)
