"""Pairing of strangers: requests, the owner's decisions (approve, reject, revoke), their audit.

Unknown chat users get no agent access until the owner approves their pairing code; this module
holds the records, the runtime decides who is allowed. Every request and every decision is
chained into the audit log in the transaction that makes it.

Revoking marks the identity (`revoked_at`) instead of deleting it: a revoked identity resolves to
nobody, and approving the same person again re-activates it, so they return to their own user
and data rather than to a new, empty user whose chat would still hold the old conversation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from memory.audit import AuditLog
from memory.db import Database
from memory.errors import StorageError
from memory.identity_rows import add_identity, identity_row, identity_user, readmit
from memory.models import ChannelIdentity, PairingRequest, PairingStatus, User
from memory.types import utcnow

# No 0/O, 1/I/L: codes are read aloud and typed by the owner.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 6

PAIRING_REVOKED = "revoked"
"""Status of an approved request whose identity the owner later revoked (`dadang pair revoke`).

Kept here until `PairingStatus` gains it; the column is a plain `String(16)` without a CHECK
constraint on either backend, so the new value needs no migration.
"""


class OwnerIdentityError(StorageError):
    """The owner's own identities cannot be revoked: that would lock the owner out."""


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
    readmitted: bool = False
    """The approval re-activated a revoked identity for its earlier user, with their data."""
    previous_user_id: int | None = None
    """For an approval of a revoked identity: the user it belonged to (differs from `user_id`
    when `--as-owner` moved the identity, and the chat's conversation, to the owner)."""
    revoked_at: datetime | None = None
    """For an approval of a revoked identity: when it had been revoked."""


@dataclass(frozen=True, kw_only=True)
class Revoked:
    """An identity the owner revoked; the user it points to keeps all their data."""

    channel: str
    external_id: str
    display_name: str | None
    user_id: int
    """The user the identity belonged to (still exists, with their memories, reminders, …)."""
    code: str | None
    """The approved pairing request now marked revoked; None for an allow-listed identity."""


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


class PairingDesk:
    """Pairing requests and decisions; `IdentityStore` offers these methods with its own."""

    _db: Database
    audit: AuditLog

    async def request_pairing(
        self, *, channel: str, external_id: str, chat_id: str, display_name: str | None
    ) -> tuple[Pairing, bool]:
        """Return the stranger's open pairing request, creating it first if needed.

        The flag is True when the request is new, so the stranger is told their code once rather
        than on every message (and the audit log records the request once).
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
            await session.flush()
            pairing = _pairing(row)
            await self._audit(session, "system", "pairing_requested", pairing)
            await session.commit()
            return pairing, True

    async def pairings(self, *, status: str | None = PairingStatus.PENDING) -> list[Pairing]:
        """Pairing requests, oldest first; all of them when `status` is None."""
        async with self._db.sessions() as session:
            query = select(PairingRequest).order_by(PairingRequest.id)
            if status is not None:
                query = query.where(PairingRequest.status == status)
            return [_pairing(row) for row in await session.scalars(query)]

    async def pairing(self, code: str) -> Pairing | None:
        """The request with `code`, whatever its status (case and spaces do not matter)."""
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(PairingRequest).where(PairingRequest.code == code.strip().upper())
            )
            return _pairing(row) if row is not None else None

    async def decide_pairing(
        self, code: str, *, approve: bool, user_id: int | None = None
    ) -> Pairing | None:
        """Approve (creating or linking the user) or reject a pending code; None if unknown.

        Deciding twice is harmless: the second call finds no pending request. The decision, the
        identity it links and its audit row commit together.
        """
        code = code.strip().upper()
        status = PairingStatus.APPROVED if approve else PairingStatus.REJECTED
        try:
            return await self._decide(code, status, user_id)
        except IntegrityError:
            # The identity was linked between our read and our write (the person was allow-
            # listed meanwhile): the decision rolled back; take it again, joining that link.
            return await self._decide(code, status, user_id)

    async def _decide(
        self, code: str, status: PairingStatus, user_id: int | None
    ) -> Pairing | None:
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(PairingRequest).where(
                    PairingRequest.code == code, PairingRequest.status == PairingStatus.PENDING
                )
            )
            if row is None:
                return None
            conn = await session.connection()
            changed = await conn.execute(
                update(PairingRequest)
                .where(PairingRequest.id == row.id, PairingRequest.status == PairingStatus.PENDING)
                .values(status=status, decided_at=utcnow())
            )
            if changed.rowcount != 1:
                return None  # a concurrent `dadang pair approve|reject` decided first
            decided = replace(_pairing(row), status=status)
            extra: dict[str, Any] = {}
            if status == PairingStatus.APPROVED:
                decided, extra = await self._admit(session, decided, user_id)
            await self._audit(session, "owner", f"pairing_{status}", decided, extra)
            await session.commit()
            return decided

    async def _admit(
        self, session: AsyncSession, decided: Pairing, user_id: int | None
    ) -> tuple[Pairing, dict[str, Any]]:
        """Link an approved request's identity: new, already active, or re-admitted if revoked."""
        identity = await identity_row(session, decided.channel, decided.external_id)
        if identity is None:
            linked = await add_identity(
                session,
                user_id=user_id,
                channel=decided.channel,
                external_id=decided.external_id,
                display_name=decided.display_name,
            )
            return replace(decided, user_id=linked), {}
        if identity.revoked_at is None:  # linked meanwhile (allow-listed): join that link
            return replace(decided, user_id=identity.user_id), {}
        readmitted = await readmit(session, identity, user_id=user_id)
        if readmitted is None:  # re-admitted concurrently (allow-list): join that link
            joined = await identity_user(session, decided.channel, decided.external_id)
            return replace(decided, user_id=joined), {}
        decided = replace(
            decided,
            user_id=readmitted,
            readmitted=readmitted == identity.user_id,
            previous_user_id=identity.user_id,
            revoked_at=identity.revoked_at,
        )
        return decided, readmission_detail(identity.user_id, readmitted)

    async def revoke(self, channel: str, external_id: str) -> Revoked | None:
        """Revoke an identity so its person is a stranger again; None if nobody is linked there.

        The identity is marked, not deleted: the user and everything stored for them stay, and
        approving the person again re-admits them to it. An approved pairing request for the
        identity is marked revoked, so the person's next message starts a new request.

        Raises:
            OwnerIdentityError: the identity belongs to the owner.
        """
        async with self._db.sessions() as session:
            identity = await session.scalar(
                select(ChannelIdentity).where(
                    ChannelIdentity.channel == channel,
                    ChannelIdentity.external_id == external_id,
                    ChannelIdentity.revoked_at.is_(None),
                )
            )
            if identity is None:
                return None
            user = await session.get(User, identity.user_id)
            if user is not None and user.is_owner:
                raise OwnerIdentityError(
                    f"{channel}:{external_id} is the owner's own identity and cannot be revoked"
                )
            conn = await session.connection()
            changed = await conn.execute(
                update(ChannelIdentity)
                .where(ChannelIdentity.id == identity.id, ChannelIdentity.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if changed.rowcount != 1:
                return None  # a concurrent `dadang pair revoke` was first
            approved = (
                await session.scalars(
                    select(PairingRequest)
                    .where(
                        PairingRequest.channel == channel,
                        PairingRequest.external_id == external_id,
                        PairingRequest.status == PairingStatus.APPROVED,
                    )
                    .order_by(PairingRequest.id.desc())
                )
            ).all()
            if approved:
                await conn.execute(
                    update(PairingRequest)
                    .where(PairingRequest.id.in_([r.id for r in approved]))
                    .values(status=PAIRING_REVOKED, decided_at=utcnow())
                )
            revoked = Revoked(
                channel=channel,
                external_id=external_id,
                display_name=identity.display_name
                or next((r.display_name for r in approved if r.display_name), None),
                user_id=identity.user_id,
                code=approved[0].code if approved else None,
            )
            await self._audit(session, "owner", "pairing_revoked", revoked)
            await session.commit()
            return revoked

    async def _audit(
        self,
        session: AsyncSession,
        actor: str,
        action: str,
        subject: Pairing | Revoked,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Chain an audit row for `subject` (plus `extra` detail) in the session's transaction."""
        await self.audit.append(
            actor=actor,
            action=action,
            user_id=subject.user_id,
            target=f"{subject.channel}:{subject.external_id}",
            detail={
                "channel": subject.channel,
                "external_id": subject.external_id,
                "display_name": subject.display_name,
                "user_id": subject.user_id,
                "code": subject.code,
                **(extra or {}),
            },
            conn=await session.connection(),
        )


def readmission_detail(previous: int, linked: int, **extra: Any) -> dict[str, Any]:
    """Audit detail of an approval that re-activated a revoked identity."""
    if linked == previous:
        return {"readmitted": True, **extra}
    return {"readmitted": False, "previous_user_id": previous, **extra}


def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
