"""The secrets table: ciphertext only; names are visible, values never."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memory.models import Base
from memory.types import UTCDateTime, utcnow


class Secret(Base):
    """One user's secret, sealed with AES-256-GCM (see `memory.secrets`)."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_secret_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    """Version byte, 12-byte nonce, AES-GCM ciphertext and tag; (user, name) is the AAD."""
    key_id: Mapped[str] = mapped_column(String(16))
    """Fingerprint of the key it was sealed with (rotation and diagnosis, not the key)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
