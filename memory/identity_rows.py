"""Row-level steps on channel identities, shared by linking (identities.py) and pairing.

Each takes the caller's session, so it joins the caller's transaction (and audit row).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from memory.models import ChannelIdentity, Conversation, PairingRequest, User


async def add_identity(
    session: AsyncSession,
    *,
    user_id: int | None,
    channel: str,
    external_id: str,
    display_name: str | None,
) -> int:
    if user_id is None:
        user = User(name=display_name or f"{channel}:{external_id}")
        session.add(user)
        await session.flush()
        user_id = user.id
    session.add(
        ChannelIdentity(
            user_id=user_id, channel=channel, external_id=external_id, display_name=display_name
        )
    )
    await session.flush()
    return user_id


async def identity_user(session: AsyncSession, channel: str, external_id: str) -> int | None:
    """The user of an active identity (a revoked one resolves to nobody)."""
    return await session.scalar(
        select(ChannelIdentity.user_id).where(
            ChannelIdentity.channel == channel,
            ChannelIdentity.external_id == external_id,
            ChannelIdentity.revoked_at.is_(None),
        )
    )


async def identity_row(
    session: AsyncSession, channel: str, external_id: str
) -> ChannelIdentity | None:
    """The identity row, active or revoked."""
    return await session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
        )
    )


async def readmit(
    session: AsyncSession, identity: ChannelIdentity, *, user_id: int | None
) -> int | None:
    """Re-activate a revoked identity; returns its user, None if it was re-admitted already.

    With `user_id` None (or the earlier user) the person returns to their own user and data.
    With another user (`--as-owner`) the identity moves there, and so do the earlier user's
    conversations in this person's chats: a chat has one conversation, keyed by channel and
    chat id (and cached by the running service), so leaving it with the earlier user would
    make the new user's turns read and write the earlier user's history. Everything else
    (memories, notes, reminders, secrets) stays with the earlier user.
    """
    target = identity.user_id if user_id is None else user_id
    conn = await session.connection()
    changed = await conn.execute(
        update(ChannelIdentity)
        .where(ChannelIdentity.id == identity.id, ChannelIdentity.revoked_at.is_not(None))
        .values(revoked_at=None, user_id=target)
    )
    if changed.rowcount != 1:
        return None
    if target != identity.user_id:
        asked_from = select(PairingRequest.chat_id).where(
            PairingRequest.channel == identity.channel,
            PairingRequest.external_id == identity.external_id,
        )
        # A private chat's id is the person's id on Telegram; other chats are the ones
        # they asked for pairing from.
        chats = {identity.external_id, *(await session.scalars(asked_from))}
        await conn.execute(
            update(Conversation)
            .where(
                Conversation.user_id == identity.user_id,
                Conversation.channel == identity.channel,
                Conversation.chat_id.in_(chats),
            )
            .values(user_id=target)
        )
    return target
