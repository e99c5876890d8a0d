"""The `files` table: what each user has stored; the bytes live in a content-addressed store."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memory.models import Base
from memory.types import UTCDateTime, utcnow


class FileOrigin(StrEnum):
    """How a file came to be stored."""

    CHAT = "chat"
    """The user sent it as an attachment."""
    DOWNLOAD = "download"
    """A tool fetched it from a URL."""
    GENERATED = "generated"
    """A tool made it (a table export, a chart)."""


class StoredFile(Base):
    """One file of one user.

    Unique per (user, source message, name): a turn re-run after a crash, or a redelivered
    message, finds the file it stored the first time instead of storing it twice.
    """

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("user_id", "source_message_id", "name", name="uq_file_source"),
        Index("ix_files_user", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    """Display name, sanitised: no folders, no control characters."""
    mime: Mapped[str] = mapped_column(String(127))
    """Media type as the sender or server declared it (`application/octet-stream` if unknown)."""
    size: Mapped[int] = mapped_column(Integer)
    """Bytes; counted against the user's quota (DADANG_FILES_MAX_MB)."""
    sha256: Mapped[str] = mapped_column(String(64))
    """Hex digest naming the bytes in `$DADANG_HOME/files/<user id>/`."""
    origin: Mapped[str] = mapped_column(String(16))
    """`chat`, `download` or `generated` (see `FileOrigin`)."""
    source_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    """The inbound message that brought or asked for the file."""
    call_id: Mapped[str | None] = mapped_column(String(100), default=None)
    """The tool call that made a generated file: a re-run of that call finds it again, while
    another call of the same request writing the same name gets a new version."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
