"""Attachments of inbound messages: stored as the user's files before the model sees the turn.

Admission (`admission_text`) must be quick and downloads nothing: it runs while the channel waits
for its acknowledgement, and only for users already admitted (a stranger's file is never
fetched). It writes each attachment as a marker line into the stored message. Before the turn,
`AttachmentIntake.prepare` downloads and stores each file and replaces the markers with the lines
the model reads (`[attached file #12: feedback.xlsx, 34 KB — …]`). The message row is thus the
durable to-do list: after a crash `prepare` runs again, finds the files already stored under
(message, name) and fetches nothing twice. A file that cannot be taken (too large, quota, channel
fault) becomes a line saying why, and the user is told at once; the message itself is answered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Final

from agent.runtime.replies import language_of, reply
from connectors.base import Attachment, Connector, InboundMessage
from connectors.errors import ConnectorError
from memory.conversations import ConversationStore, InboundRecord
from memory.file_models import FileOrigin
from memory.files import FileRecord, FileRejected, FileStore, format_size, sanitise_name
from memory.outbox import OutboxStore

log = logging.getLogger(__name__)

_MARK: Final = "⟦attachment⟧ "
_DEFUSED: Final = "[attachment] "


def admission_text(message: InboundMessage) -> str:
    """The text to store for `message`: a marker line per attachment, then the user's text.

    A user typing the marker themselves gets it defused, so only the channel can name a file to
    fetch.
    """
    text = message.text.replace(_MARK.strip(), _DEFUSED.strip())
    marks = [
        _MARK
        + json.dumps(
            {"id": a.id, "name": a.name, "mime": a.mime, "size": a.size}, ensure_ascii=False
        )
        for a in message.attachments
    ]
    return "\n".join([*marks, text] if text else marks)


def _pending(text: str) -> tuple[list[Attachment], str]:
    """The marked attachments at the top of a stored text, and the rest of it."""
    lines = text.split("\n")
    found: list[Attachment] = []
    while lines and lines[0].startswith(_MARK):
        try:
            raw = json.loads(lines[0][len(_MARK) :])
        except ValueError:
            break  # not written by `admission_text`: leave it as text
        if not isinstance(raw, dict) or "id" not in raw:
            break
        lines.pop(0)
        size = raw.get("size")
        found.append(
            Attachment(
                id=str(raw["id"]),
                name=str(raw.get("name") or "file"),
                mime=str(raw.get("mime") or "application/octet-stream"),
                size=size if isinstance(size, int) else None,
            )
        )
    return found, "\n".join(lines)


def stored_line(record: FileRecord) -> str:
    """What the model reads for a stored attachment."""
    return (
        f"[attached file #{record.id}: {record.name}, {format_size(record.size)} — "
        "use table_read or file tools]"
    )


@dataclasses.dataclass(kw_only=True)
class AttachmentIntake:
    """Fetches and stores the attachments of a message before its turn (see module docstring)."""

    files: FileStore
    connectors: dict[str, Connector]
    conversations: ConversationStore
    outbox: OutboxStore
    deliver: Callable[..., None]
    """`OutboxDelivery.submit`, for the notice about a file that could not be taken."""

    async def prepare(self, record: InboundRecord) -> InboundRecord:
        """`record` with its attachments stored and described; unchanged if it has none."""
        pending, rest = _pending(record.text)
        if not pending:
            return record
        lines: list[str] = []
        failed: list[tuple[str, str]] = []
        for attachment in pending:
            name = sanitise_name(attachment.name)
            try:
                stored = await self._store(record, attachment, name)
            except (ConnectorError, FileRejected) as exc:
                reason = str(exc)
            except Exception:  # the message must be answered even if storing a file broke
                log.exception("attachment %s of message %s failed", name, record.message_id)
                reason = "an internal error (see the service log)"
            else:
                lines.append(stored_line(stored))
                continue
            lines.append(f"[attached file {name} was not stored: {reason}. The user was told.]")
            failed.append((name, reason))
        text = "\n".join([*lines, rest] if rest else lines)
        # Rewritten before the notices: a crash after this point never tells the user twice.
        await self.conversations.set_text(record.message_id, text)
        for name, reason in failed:
            item = await self.outbox.add(
                channel=record.channel,
                chat_id=record.chat_id,
                text=reply("attachment_failed", language_of(rest), name=name, reason=reason),
                conversation_id=record.conversation_id,
                claimed=True,
            )
            self.deliver(item, channel=record.channel, chat_id=record.chat_id)
        return dataclasses.replace(record, text=text)

    async def _store(self, record: InboundRecord, attachment: Attachment, name: str) -> FileRecord:
        found = await self.files.find(
            record.user_id, source_message_id=record.message_id, name=name
        )
        if found is not None:
            return found
        await self.files.check_room(record.user_id, attachment.size, name=name)
        connector = self.connectors.get(record.channel)
        if connector is None:
            raise ConnectorError(f"the {record.channel} channel is not connected to this process")
        data = await connector.fetch_attachment(
            attachment, max_bytes=await self.files.room(record.user_id)
        )
        return await self.files.add(
            record.user_id,
            name,
            data,
            mime=attachment.mime,
            origin=FileOrigin.CHAT,
            source_message_id=record.message_id,
        )
