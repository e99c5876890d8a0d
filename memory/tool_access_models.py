"""Which tools each user may use, beyond the defaults (`dadang tools enable|disable`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memory.models import Base
from memory.types import UTCDateTime, utcnow


class ToolAccessRule(Base):
    """One switch for one user: a tool name or pattern turned on or off.

    Several rules may match a tool; the most specific pattern wins (see `memory.tool_access`).
    """

    __tablename__ = "tool_access"
    __table_args__ = (UniqueConstraint("user_id", "pattern", name="uq_tool_access"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    pattern: Mapped[str] = mapped_column(String(200))
    """A tool name, a `*` pattern of names (`office_*`), or a source (`openapi:office`)."""
    enabled: Mapped[bool] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
