"""Plan messages: one per request, posted once and edited in place as the task moves on.

Sent straight through the connector, not the outbox: a progress line is only worth showing
while the task runs, and the final report (which does go through the outbox) repeats what it
says. The message id is remembered per request in memory, so a turn resumed after an approval
keeps editing the same message; after a restart the next update posts a fresh one.
"""

from __future__ import annotations

import collections
import logging
from typing import Final

from automation.tools.base import ProgressBoard
from connectors.base import Connector, OutboundMessage

log = logging.getLogger(__name__)

_REMEMBERED: Final = 1024
"""Requests whose plan message id is kept (oldest forgotten first)."""


class ChatProgress:
    """Hands each request a board on the chat it came from."""

    def __init__(self, connectors: dict[str, Connector]) -> None:
        self._connectors = connectors
        self._posted: collections.OrderedDict[int, str] = collections.OrderedDict()
        self._shown: dict[int, str] = {}

    def board(self, channel: str, chat_id: str, request_id: int) -> ProgressBoard | None:
        """The board of request `request_id`, or None when its channel is not served here."""
        connector = self._connectors.get(channel)
        if connector is None:
            return None
        return _Board(self, connector, chat_id, request_id)

    async def show(self, connector: Connector, chat_id: str, request_id: int, text: str) -> None:
        """Post or edit; failures are logged, never raised (see `ProgressBoard`)."""
        if self._shown.get(request_id) == text:
            return  # Telegram refuses an edit that changes nothing
        try:
            posted = self._posted.get(request_id)
            if posted is None:
                posted = await connector.send(OutboundMessage(chat_id=chat_id, text=text))
                self._posted[request_id] = posted
                while len(self._posted) > _REMEMBERED:
                    old, _ = self._posted.popitem(last=False)
                    self._shown.pop(old, None)
            else:
                await connector.edit(chat_id, posted, text)
            self._shown[request_id] = text
        except Exception as exc:  # progress is best effort; the task goes on
            log.info("could not show progress of request %s: %s", request_id, exc)


class _Board:
    def __init__(
        self, owner: ChatProgress, connector: Connector, chat_id: str, request_id: int
    ) -> None:
        self._owner = owner
        self._connector = connector
        self._chat_id = chat_id
        self._request_id = request_id

    async def show(self, text: str) -> None:
        await self._owner.show(self._connector, self._chat_id, self._request_id, text)
