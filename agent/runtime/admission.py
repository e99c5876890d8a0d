"""Who may talk, and the answers that need no model: pairing codes for strangers, notices for
commands and refusals, and the per-user message rate limit.

Split from the runtime so `Runtime.submit` reads as the order of decisions; every answer here
is stored (deduplicated on the channel's message id) and goes out through the outbox.
"""

from __future__ import annotations

import logging
import time

from agent.metrics import Metrics
from agent.policy.limits import Limited
from agent.runtime.delivery import OutboxDelivery
from agent.runtime.replies import language_of, reply
from agent.settings import Settings
from connectors.base import Admission, InboundMessage
from memory.conversations import ConversationStore
from memory.identities import IdentityStore
from memory.models import MessageStatus
from memory.outbox import OutboxStore

log = logging.getLogger(__name__)


class Doorkeeper:
    """Identity resolution, pairing and model-free answers for `Runtime.submit`."""

    def __init__(
        self,
        *,
        settings: Settings,
        identities: IdentityStore,
        conversations: ConversationStore,
        outbox: OutboxStore,
        delivery: OutboxDelivery,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._identities = identities
        self._conversations = conversations
        self._outbox = outbox
        self._delivery = delivery
        self._metrics = metrics
        self._limit_told: dict[int, float] = {}
        """When each user was last told they are over the message limit (told once a window)."""

    async def resolve_user(self, message: InboundMessage) -> int | None:
        """The user behind the sender, read from the database on every message (no cache).

        `dadang pair revoke` revokes identities from another process, and a revoked person must
        be refused from their very next message. A TTL cache would leave a window in which they
        are still admitted and would save one lookup on a unique index (well under a
        millisecond on SQLite, one round trip on PostgreSQL) per message that then costs a
        model turn of seconds, so there is none.
        """
        return await self._lookup_user(message)

    async def _lookup_user(self, message: InboundMessage) -> int | None:
        found = await self._identities.user_for(message.channel, message.external_user_id)
        if found is not None:
            return found
        ids = self._settings.telegram_allowed_users
        if message.channel != "telegram" or not message.external_user_id.isdigit():
            return None
        if int(message.external_user_id) not in ids:
            return None
        # The first allow-listed id is the owner: Telegram and the terminal share one memory.
        owner = await self._identities.owner()
        link_to = owner.id if owner and int(message.external_user_id) == ids[0] else None
        return await self._identities.link(
            user_id=link_to,
            channel=message.channel,
            external_id=message.external_user_id,
            display_name=message.display_name,
        )

    async def pairing(self, message: InboundMessage) -> Admission:
        pairing, new = await self._identities.request_pairing(
            channel=message.channel,
            external_id=message.external_user_id,
            chat_id=message.chat_id,
            display_name=message.display_name,
        )
        if new:
            log.info(
                "pairing requested by %s:%s (code %s)",
                message.channel,
                message.external_user_id,
                pairing.code,
            )
            item = await self._outbox.add(
                channel=message.channel,
                chat_id=message.chat_id,
                text=reply(
                    "pairing", language_of(message.text, message.language_code), code=pairing.code
                ),
                claimed=True,
            )
            self._delivery.submit(item, channel=message.channel, chat_id=message.chat_id)
        return Admission.PAIRING

    async def notice(self, message: InboundMessage, user_id: int, text: str) -> Admission:
        """Answer without the model (commands, refusals); the message is stored, deduplicated."""
        record = await self._conversations.record_inbound(
            user_id=user_id,
            channel=message.channel,
            chat_id=message.chat_id,
            text=message.text[: self._settings.max_inbound_chars] or "(empty)",
            channel_message_id=message.channel_message_id,
            status=MessageStatus.REJECTED,
        )
        if record is None:
            return Admission.DUPLICATE
        item = await self._outbox.add(
            channel=message.channel,
            chat_id=message.chat_id,
            text=text,
            conversation_id=record.conversation_id,
            claimed=True,
        )
        self._delivery.submit(item, channel=message.channel, chat_id=message.chat_id)
        return Admission.HANDLED

    async def rate_limited(
        self, message: InboundMessage, user_id: int, language: str, limited: Limited
    ) -> Admission:
        """Refuse a message over the limit: told once per window, then stored silently."""
        now = time.monotonic()
        if now - self._limit_told.get(user_id, -limited.window) < limited.window:
            record = await self._conversations.record_inbound(
                user_id=user_id,
                channel=message.channel,
                chat_id=message.chat_id,
                text=message.text[: self._settings.max_inbound_chars] or "(empty)",
                channel_message_id=message.channel_message_id,
                status=MessageStatus.REJECTED,
            )
            return Admission.DUPLICATE if record is None else Admission.REFUSED
        self._limit_told[user_id] = now
        self._metrics.errors.labels(kind="rate_limited").inc()
        text = reply(
            "rate_limited",
            language,
            limit=limited.limit,
            seconds=max(1, round(limited.retry_after)),
        )
        return await self.notice(message, user_id, text)
