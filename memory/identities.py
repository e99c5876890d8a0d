"""Users and their channel identities (a Telegram id, the local terminal, …).

Pairing of strangers lives in memory/pairing.py; `IdentityStore` offers both, one handle for the
runtime and the CLI.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from memory.audit import AuditLog
from memory.db import Database
from memory.identity_rows import add_identity, identity_row, identity_user, readmit
from memory.models import ChannelIdentity, User
from memory.pairing import (
    PAIRING_REVOKED,
    OwnerIdentityError,
    Pairing,
    PairingDesk,
    Revoked,
    readmission_detail,
)

__all__ = ["PAIRING_REVOKED", "IdentityStore", "OwnerIdentityError", "Pairing", "Revoked"]


class IdentityStore(PairingDesk):
    """Reads and writes users, identities and pairing requests."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.audit = AuditLog(db)

    async def owner(self) -> User | None:
        """The owner of this instance, if `dadang init` or a first run created one."""
        async with self._db.sessions() as session:
            return await session.scalar(select(User).where(User.is_owner).order_by(User.id))

    async def ensure_owner(self, *, name: str) -> User:
        """Create the owner with a local terminal identity unless one exists (safe to repeat)."""
        async with self._db.sessions() as session:
            existing = await session.scalar(select(User).where(User.is_owner).order_by(User.id))
            if existing is not None:
                return existing
            user = User(name=name, is_owner=True)
            session.add(user)
            await session.flush()
            session.add(ChannelIdentity(user_id=user.id, channel="cli", external_id="local"))
            await session.commit()
            return user

    async def user_for(self, channel: str, external_id: str) -> int | None:
        """The user behind an identity, or None for a stranger (or a revoked identity)."""
        async with self._db.engine.connect() as conn:
            return await conn.scalar(
                select(ChannelIdentity.user_id).where(
                    ChannelIdentity.channel == channel,
                    ChannelIdentity.external_id == external_id,
                    ChannelIdentity.revoked_at.is_(None),
                )
            )

    async def admitted(self, user_id: int, channel: str) -> bool:
        """Whether the user still has an unrevoked identity on `channel`."""
        async with self._db.engine.connect() as conn:
            found = await conn.scalar(
                select(ChannelIdentity.id)
                .where(
                    ChannelIdentity.user_id == user_id,
                    ChannelIdentity.channel == channel,
                    ChannelIdentity.revoked_at.is_(None),
                )
                .limit(1)
            )
        return found is not None

    async def user_named(self, name: str) -> int | None:
        """The oldest user with exactly this name."""
        async with self._db.sessions() as session:
            return await session.scalar(select(User.id).where(User.name == name).order_by(User.id))

    async def create_user(self, name: str) -> int:
        """A new user with no channel identity yet (e.g. created by `dadang memory import`)."""
        async with self._db.sessions() as session:
            user = User(name=name)
            session.add(user)
            await session.commit()
            return user.id

    async def get_user(self, user_id: int) -> User | None:
        """One user by id."""
        async with self._db.sessions() as session:
            return await session.get(User, user_id)

    async def link(
        self, *, user_id: int | None, channel: str, external_id: str, display_name: str | None
    ) -> int:
        """Attach an identity to `user_id`, or to a new user when None; returns the user id.

        Idempotent: linking an identity that exists returns its current user. Linking a revoked
        identity (the owner allow-listed the person after revoking them) re-admits it, audited
        like an approval: to its earlier user when `user_id` is None, else moved to `user_id`.
        """
        async with self._db.sessions() as session:
            found = await identity_user(session, channel, external_id)
            if found is not None:
                return found
            identity = await identity_row(session, channel, external_id)
            if identity is not None:
                readmitted = await readmit(session, identity, user_id=user_id)
                if readmitted is None:  # re-admitted concurrently
                    found = await identity_user(session, channel, external_id)
                    assert found is not None
                    return found
                subject = Revoked(
                    channel=channel,
                    external_id=external_id,
                    display_name=identity.display_name or display_name,
                    user_id=readmitted,
                    code=None,
                )
                await self._audit(
                    session,
                    "system",
                    "pairing_approved",
                    subject,
                    readmission_detail(identity.user_id, readmitted, via="telegram_allowed_users"),
                )
                await session.commit()
                return readmitted
            user_id = await add_identity(
                session,
                user_id=user_id,
                channel=channel,
                external_id=external_id,
                display_name=display_name,
            )
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent message from the same stranger won the race; use its row.
                await session.rollback()
                found = await identity_user(session, channel, external_id)
                assert found is not None
                return found
            return user_id
