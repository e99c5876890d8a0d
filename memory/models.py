"""SQLAlchemy 2.0 models: who the users are, what they said, and what is owed to them.

The schema is changed only through Alembic revisions in `memory/migrations/versions`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from memory.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    """Declarative base for every Dadang table."""


class MessageStatus(StrEnum):
    """Where an inbound message is in its life; `pending` rows are (re)queued at start."""

    PENDING = "pending"
    WAITING = "waiting"
    """The turn is paused on an approval; the decision requeues it (as `pending`)."""
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


class OutboxStatus(StrEnum):
    """Delivery state of an outgoing message."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class PairingStatus(StrEnum):
    """Decision on a stranger who asked to use the assistant."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class User(Base):
    """A person the assistant serves; identities on every channel point here."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    """How the assistant addresses the user."""
    is_owner: Mapped[bool] = mapped_column(default=False)
    """The person who runs this instance and approves pairings."""
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    """IANA zone for this user; falls back to DADANG_TIMEZONE."""
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    """Last language the user spoke, as a BCP 47 tag."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChannelIdentity(Base):
    """One account of a user on one channel (a Telegram user id, the local terminal, …)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    """Connector id, e.g. `telegram`, `cli`."""
    external_id: Mapped[str] = mapped_column(String(128))
    """The user's id on that channel."""
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """When the owner took this access back (`dadang pair revoke`); None while it is active.

    A revoked identity resolves to nobody and nothing is sent to it unasked; the row is kept so
    approving the person again re-admits them to their earlier user and data.
    """


class PairingRequest(Base):
    """A stranger's request for access, approved by the owner with `dadang pair approve CODE`."""

    __tablename__ = "pairing_requests"
    __table_args__ = (Index("ix_pairing_identity", "channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    """What the stranger tells the owner; short and unambiguous."""
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    chat_id: Mapped[str] = mapped_column(String(128))
    """Where to tell the stranger they were admitted."""
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16), default=PairingStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Conversation(Base):
    """One chat on one channel; the LangGraph thread id is `conversation-<id>`."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "chat_id", name="uq_conversation_chat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    """The channel's chat id, where replies go."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    """A user or assistant message; inbound rows are the durable queue of work."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "channel_message_id", name="uq_message_channel_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    """`user` or `assistant`."""
    text: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    channel_message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """The channel's id of an inbound message; a redelivered update collides here and is ignored."""
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.DONE)
    """For inbound messages: pending until answered, then done/rejected/failed."""
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), default=None)
    """For assistant messages: the inbound message answered."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """How many turns were started for this inbound message."""
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxItem(Base):
    """A message owed to a channel: written with the reply, sent, then marked delivered."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status", "status", "next_attempt_at"),
        Index("uq_outbox_dedupe", "dedupe_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), default=None
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), default=None
    )
    """The assistant message this delivers, if any (notices have none)."""
    reply_to_channel_message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    """Parts of a split long reply already delivered, so a retry resumes after them."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    channel_message_ids: Mapped[str | None] = mapped_column(Text, default=None)
    """Comma-separated ids the channel gave the delivered parts."""
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    buttons: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON rows of [label, callback data] shown under the last part (reminder actions)."""
    file_id: Mapped[int | None] = mapped_column(Integer, default=None)
    """A stored file (`files.id`) sent as a document with `text` as its caption. No foreign key:
    a file deleted before delivery makes the row fail with a clear error instead of vanishing."""
    dedupe_key: Mapped[str | None] = mapped_column(String(128), default=None)
    """Set by sends a re-run turn could repeat (`file:<message>:<file>`); a second row with the
    same key is refused, so a replayed tool call never sends twice."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Note(Base):
    """A note the user asked the assistant to keep (long-term memory proper comes later)."""

    __tablename__ = "notes"
    __table_args__ = (UniqueConstraint("user_id", "dedupe_key", name="uq_note_dedupe"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    source_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    """The inbound message that asked for it."""
    dedupe_key: Mapped[str] = mapped_column(String(64))
    """Hash of source message and text, so a retried turn does not store the note twice."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemoryKind(StrEnum):
    """What a memory is about; recall keeps quotas per kind."""

    FACT = "fact"
    PREFERENCE = "preference"
    MOOD = "mood"
    COMMITMENT = "commitment"
    REJECTED_PROPOSAL = "rejected_proposal"
    PERSON = "person"
    PROJECT = "project"
    EVENT = "event"
    INSTRUCTION = "instruction"


class Memory(Base):
    """Something the assistant knows about its user; the vector index is rebuilt from these rows."""

    __tablename__ = "memories"
    __table_args__ = (
        UniqueConstraint("user_id", "external_id", name="uq_memory_external"),
        Index("ix_memories_user_active", "user_id", "valid_to", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """Id given on import (`dadang memory import`), kept so re-imports are idempotent."""
    kind: Mapped[str] = mapped_column(String(32), default=MemoryKind.FACT)
    content: Mapped[str] = mapped_column(Text)
    """The memory in one self-contained sentence, in the user's language."""
    subject: Mapped[str | None] = mapped_column(String(200), default=None)
    """Who or what it is about ("王总", "the Q3 report"), for grouping and supersession."""
    entities: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON list of names, places and projects mentioned."""
    importance: Mapped[float] = mapped_column(default=0.5)
    """0–1: how much it should weigh in recall and the core profile."""
    confidence: Mapped[float] = mapped_column(default=0.8)
    """0–1: how sure the extraction was (1 for what the user saved explicitly)."""
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    """When it became true (the message's time for extracted memories)."""
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """When it stopped being true (superseded); None while current."""
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("memories.id", ondelete="SET NULL"), default=None
    )
    """The older memory this one replaced ("moved to Shenzhen" → "lives in Beijing")."""
    source_message_ids: Mapped[str | None] = mapped_column(Text, default=None)
    """JSON list of message ids the memory was learnt from."""
    search_text: Mapped[str] = mapped_column(Text, default="")
    """Content segmented into words (jieba for Chinese) for full-text search."""
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """For commitments: when it is due; the follow-up planner asks about it then."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reflection(Base):
    """Extraction bookkeeping: one row per inbound message, so a retry never applies twice."""

    __tablename__ = "reflections"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    """pending → done (operations applied) or dropped (invalid output twice)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ConversationSummary(Base):
    """Rolling summary of a conversation's older turns, so long threads keep a bounded prompt."""

    __tablename__ = "conversation_summaries"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[str] = mapped_column(Text, default="")
    upto_message_id: Mapped[int] = mapped_column(Integer, default=0)
    """Messages with ids up to this one are covered by the summary."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
