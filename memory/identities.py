"""Users, their channel identities, and pairing of strangers.

Unknown chat users get no agent access until the owner approves their pairing code; this module
holds the records, the runtime decides who is allowed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.models import ChannelIdentity, PairingRequest, PairingStatus, User
from memory.types import utcnow

# No 0/O, 1/I/L: codes are read aloud and typed by the owner.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 6


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """A pairing request as the owner sees it in `dadang pair list`."""

    code: str
    channel: str
    external_id: str
    chat_id: str
    display_name: str | None
    status: str
    created_at: datetime
    user_id: int | None = None


def _pairing(row: PairingRequest, user_id: int | None = None) -> Pairing:
    return Pairing(
        code=row.code,
        channel=row.channel,
        external_id=row.external_id,
        chat_id=row.chat_id,
        display_name=row.display_name,
        status=row.status,
        created_at=row.created_at,
        user_id=user_id,
    )


class IdentityStore:
    """Reads and writes users, identities and pairing requests."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        """The user behind an identity, or None for a stranger."""
        async with self._db.engine.connect() as conn:
            return await conn.scalar(
                select(ChannelIdentity.user_id).where(
                    ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
                )
            )

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

        Idempotent: linking an identity that exists returns its current user.
        """
        async with self._db.sessions() as session:
            found = await self._identity_user(session, channel, external_id)
            if found is not None:
                return found
            if user_id is None:
                user = User(name=display_name or f"{channel}:{external_id}")
                session.add(user)
                await session.flush()
                user_id = user.id
            session.add(
                ChannelIdentity(
                    user_id=user_id,
                    channel=channel,
                    external_id=external_id,
                    display_name=display_name,
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent message from the same stranger won the race; use its row.
                await session.rollback()
                found = await self._identity_user(session, channel, external_id)
                assert found is not None
                return found
            return user_id

    @staticmethod
    async def _identity_user(session: AsyncSession, channel: str, external_id: str) -> int | None:
        return await session.scalar(
            select(ChannelIdentity.user_id).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        )

    async def request_pairing(
        self, *, channel: str, external_id: str, chat_id: str, display_name: str | None
    ) -> tuple[Pairing, bool]:
        """Return the stranger's open pairing request, creating it first if needed.

        The flag is True when the request is new, so the stranger is told their code once rather
        than on every message.
        """
        async with self._db.sessions() as session:
            open_row = await session.scalar(
                select(PairingRequest).where(
                    PairingRequest.channel == channel,
                    PairingRequest.external_id == external_id,
                    PairingRequest.status == PairingStatus.PENDING,
                )
            )
            if open_row is not None:
                return _pairing(open_row), False
            row = PairingRequest(
                code=_new_code(),
                channel=channel,
                external_id=external_id,
                chat_id=chat_id,
                display_name=display_name,
            )
            session.add(row)
            await session.commit()
            return _pairing(row), True

    async def pairings(self, *, status: str | None = PairingStatus.PENDING) -> list[Pairing]:
        """Pairing requests, oldest first; all of them when `status` is None."""
        async with self._db.sessions() as session:
            query = select(PairingRequest).order_by(PairingRequest.id)
            if status is not None:
                query = query.where(PairingRequest.status == status)
            return [_pairing(row) for row in await session.scalars(query)]

    async def decide_pairing(
        self, code: str, *, approve: bool, user_id: int | None = None
    ) -> Pairing | None:
        """Approve (creating or linking the user) or reject a pending code; None if unknown.

        Deciding twice is harmless: the second call finds no pending request.
        """
        code = code.strip().upper()
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(PairingRequest).where(
                    PairingRequest.code == code, PairingRequest.status == PairingStatus.PENDING
                )
            )
            if row is None:
                return None
            status = PairingStatus.APPROVED if approve else PairingStatus.REJECTED
            await session.execute(
                update(PairingRequest)
                .where(PairingRequest.id == row.id)
                .values(status=status, decided_at=utcnow())
            )
            await session.commit()
            decided = _pairing(row)
        if not approve:
            return Pairing(**{**decided.__dict__, "status": PairingStatus.REJECTED})
        linked = await self.link(
            user_id=user_id,
            channel=decided.channel,
            external_id=decided.external_id,
            display_name=decided.display_name,
        )
        return Pairing(**{**decided.__dict__, "status": PairingStatus.APPROVED, "user_id": linked})


def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
