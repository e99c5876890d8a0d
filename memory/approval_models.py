"""Tables of the human contract: approval requests, standing grants, policy file versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memory.models import Base
from memory.types import UTCDateTime, utcnow


class Approval(Base):
    """One tool call waiting for (or decided by) its user.

    Keyed by (message, call): a turn re-run after a crash finds its request instead of asking
    twice. The row, not the graph's resume value, is the truth the `gate` node reads.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("message_id", "call_id", name="uq_approval_call"),
        Index("ix_approvals_status", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(Integer)
    """The inbound message whose turn waits."""
    call_id: Mapped[str] = mapped_column(String(100))
    tool: Mapped[str] = mapped_column(String(100))
    risk: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(300), default="")
    grant_target: Mapped[str] = mapped_column(String(300), default="")
    """What "Always allow this" covers: a host for network tools, "" (every call) otherwise."""
    arguments: Mapped[str] = mapped_column(Text)
    """JSON as the model sent it, secret values redacted."""
    reason: Mapped[str] = mapped_column(String(300))
    """Why the policy asks (shown to the user)."""
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, approved, rejected, expired."""
    always: Mapped[bool] = mapped_column(default=False)
    """Approved with "always allow this": a grant was added too."""
    outbox_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The request message (to edit when decided)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_via: Mapped[str | None] = mapped_column(String(32), nullable=True)


class PolicyGrant(Base):
    """ "Always allow this": a user's standing permission for one tool (on one target)."""

    __tablename__ = "policy_grants"
    __table_args__ = (UniqueConstraint("user_id", "tool", "target", name="uq_policy_grant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tool: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(300), default="")
    """Empty: every target of the tool."""
    approval_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PolicyVersion(Base):
    """Digests of the policy file as the service loaded it; a new digest is an audited change."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    """The file as loaded, so a change can be shown as a diff later."""
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
