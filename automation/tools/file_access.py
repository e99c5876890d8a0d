"""What a tool may do with files: the acting user's own files, and sending them to their chat.

`FileAccess` is built once by the runtime; `for_user` gives each batch of tool calls a
`FileService` bound to the acting user, the chat the request came from and the inbound message.
Binding instead of passing ids per call is the isolation: a tool cannot name another user's
file or another chat, whatever the model writes into its arguments.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass

from memory.file_models import FileOrigin
from memory.files import FileNotFound, FileRecord, FileStore
from memory.outbox import OutboxEntry, OutboxStore


class NoChat(Exception):
    """The request came from no chat (a scheduled job without one): nothing to send to."""


@dataclass(frozen=True, kw_only=True)
class FileAccess:
    """The runtime's file dependencies; see the module docstring."""

    store: FileStore
    outbox: OutboxStore
    deliver: Callable[[OutboxEntry], None] | None = None
    """Hands a committed outbox row to this process's sender; None: its poll finds the row."""

    def for_user(
        self,
        user_id: int,
        *,
        channel: str | None,
        chat_id: str | None,
        source_message_id: int | None,
    ) -> FileService:
        """The files of `user_id`, sending to (`channel`, `chat_id`)."""
        return FileService(
            access=self,
            user_id=user_id,
            channel=channel,
            chat_id=chat_id,
            source_message_id=source_message_id,
        )


@dataclass(frozen=True, kw_only=True)
class FileService:
    """One user's files as tools see them (built by `FileAccess.for_user`)."""

    access: FileAccess
    user_id: int
    channel: str | None
    chat_id: str | None
    source_message_id: int | None
    """The inbound message the turn answers: adds and sends are idempotent per message."""

    async def add(
        self,
        name: str,
        data: bytes,
        *,
        mime: str,
        origin: FileOrigin | str = FileOrigin.GENERATED,
        call_id: str | None = None,
    ) -> FileRecord:
        """Store a file for the user (idempotent per message and name, or per message and tool
        call when `call_id` is given: see `FileStore.add`).

        Raises:
            FileRejected: over the per-file limit or the user's quota (the message says which).
        """
        return await self.access.store.add(
            self.user_id,
            name,
            data,
            mime=mime,
            origin=origin,
            source_message_id=self.source_message_id,
            call_id=call_id,
        )

    async def get(self, file_id: int) -> FileRecord | None:
        """The user's file `file_id`; None if it does not exist or is someone else's."""
        return await self.access.store.get(self.user_id, file_id)

    async def read(self, file_id: int) -> bytes:
        """The file's bytes.

        Raises:
            FileNotFound: not among the user's files.
            ArtefactError: the bytes are missing or changed on disk.
        """
        return await self.access.store.read(self.user_id, file_id)

    async def list(self, limit: int = 50) -> builtins.list[FileRecord]:
        """The user's files, newest first."""
        return await self.access.store.list(self.user_id, limit)

    async def usage(self) -> tuple[int, int]:
        """(bytes used, quota in bytes)."""
        return await self.access.store.usage(self.user_id), self.access.store.quota_bytes

    async def room(self) -> int:
        """The largest file the user may store next, in bytes."""
        return await self.access.store.room(self.user_id)

    async def send(self, file_id: int, *, caption: str = "") -> bool:
        """Queue the user's file for their chat; False when this message already sent it.

        The outbox row is keyed by (message, file), so a turn re-run after a crash does not send
        the document twice; delivery retries flood control and network faults like any reply.

        Raises:
            FileNotFound: not among the user's files.
            NoChat: the request has no chat to send to.
        """
        record = await self.get(file_id)
        if record is None:
            raise FileNotFound(f"there is no file #{file_id} among your files")
        if not self.channel or not self.chat_id:
            raise NoChat("this request came from no chat, so there is nowhere to send the file")
        key = f"file:{self.source_message_id}:{file_id}" if self.source_message_id else None
        deliver = self.access.deliver
        entry = await self.access.outbox.add_file(
            channel=self.channel,
            chat_id=self.chat_id,
            file_id=record.id,
            caption=caption,
            dedupe_key=key,
            claimed=deliver is not None,
        )
        if entry is None:
            return False
        if deliver is not None:
            deliver(entry)
        return True
