"""The connector contract: channel updates in as `InboundMessage`, replies out via `send`."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from connectors.errors import AttachmentError, DeliveryError


@dataclass(frozen=True, kw_only=True)
class InboundMessage:
    """A user's message, normalised from any channel."""

    channel: str
    """Connector id (`telegram`, `cli`, …)."""
    external_user_id: str
    chat_id: str
    text: str
    channel_message_id: str | None
    """Unique within the channel; a redelivered update carries the same id and is dropped."""
    display_name: str | None = None
    language_code: str | None = None
    command: str | None = None
    """`start`, `help`, … when the message is a slash command."""
    callback: Callback | None = None
    """Set when the user pressed an inline button instead of writing."""
    attachments: list[Attachment] = field(default_factory=list)
    """Files sent with the message (`text` is then their caption, possibly empty); fetched with
    `Connector.fetch_attachment` only once the sender is known to be admitted."""


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A file the user sent, not yet downloaded."""

    id: str
    """The channel's handle to fetch it (Telegram: the `file_id`)."""
    name: str
    """File name as the sender's app gave it (unsanitised)."""
    mime: str
    size: int | None
    """Bytes, when the channel says so before the download."""


@dataclass(frozen=True, kw_only=True)
class Callback:
    """An inline-button press: which button (`data`) under which message."""

    id: str
    """The channel's id of the press, answered with `Connector.answer_callback`."""
    data: str
    message_id: str | None
    """The channel's id of the message carrying the button (to edit it)."""


@dataclass(frozen=True, kw_only=True)
class Button:
    """An inline button; `data` comes back as a callback."""

    label: str
    data: str


@dataclass(frozen=True, kw_only=True)
class OutboundMessage:
    """One part of a reply, already cut to the channel's size limit."""

    chat_id: str
    text: str
    reply_to: str | None = None
    buttons: list[list[Button]] = field(default_factory=list)


class Admission(StrEnum):
    """What the runtime did with an inbound message."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    PAIRING = "pairing"
    REFUSED = "refused"
    HANDLED = "handled"


InboundSink = Callable[[InboundMessage], Awaitable[Admission]]
"""The runtime's entry point: persists the message and returns once it is safe to acknowledge."""


class Connector(abc.ABC):
    """A chat channel; register one per channel with the runtime."""

    id: str
    """Stable channel name stored with identities and messages."""
    max_message_chars: int = 4096

    @abc.abstractmethod
    async def start(self, sink: InboundSink) -> None:
        """Begin receiving; each message goes to `sink` and is acknowledged after it returns."""

    async def pause(self) -> None:
        """Stop receiving new messages while sending still works (first step of shutdown)."""
        return None

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop receiving and release resources."""

    def receive(self, active: bool) -> None:  # noqa: B027 - most channels need no switch
        """Take updates from the channel, or stop taking them (sending goes on either way).

        Channels where only one process may receive (Telegram long polling: a second poller
        is refused with 409) are switched by the runtime so only the elected leader receives.
        """

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> str:
        """Deliver one part; returns the channel's message id.

        Raises:
            DeliveryError: the channel refused or failed (see `retryable`).
        """

    async def fetch_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Download an attachment of an inbound message.

        Raises:
            AttachmentError: too large (over `max_bytes` or the channel's own limit), gone, or
                the channel failed; the message says so in words for the user.
        """
        raise AttachmentError(f"the {self.id} channel cannot receive files")

    async def send_file(self, chat_id: str, *, name: str, data: bytes, caption: str = "") -> str:
        """Deliver a file as a document with an optional caption; returns the channel's id.

        A method of its own rather than a field of `OutboundMessage`: a file is never split into
        parts, carries no buttons and has its own limits (Telegram: 50 MB, a 1024-character
        caption), and a channel without files fails loudly here instead of sending only text.

        Raises:
            DeliveryError: the channel refused or failed (see `retryable`).
        """
        raise DeliveryError(f"the {self.id} channel cannot send files", retryable=False)

    async def edit(self, chat_id: str, message_id: str, text: str) -> None:
        """Replace a sent message's text and drop its buttons (no-op where unsupported)."""
        return None

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Acknowledge a button press, optionally with a short notice."""
        return None

    async def typing(self, chat_id: str) -> None:
        """Show that the assistant is working (no-op where the channel has no such thing)."""
        return None

    def split(self, text: str) -> list[str]:
        """Cut a reply into parts the channel accepts, preferring paragraph and line breaks."""
        return split_text(text, self.max_message_chars)

    def status(self) -> dict[str, object]:
        """Health for `/healthz`."""
        return {"ok": True}


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into chunks of at most `limit` characters at the nicest boundary available."""
    text = text.strip() or "…"
    parts: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n"), -1)
        if cut < limit // 2:
            cut = window.rfind("\n")
        if cut < limit // 2:
            cut = max(window.rfind(". "), window.rfind("。"), window.rfind(" "))
            cut = cut + 1 if cut >= limit // 2 else -1
        if cut < limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts
