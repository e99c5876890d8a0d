"""Approval requests: created with their request message, decided once, expired on time.

Every state change is one transaction with its audit row, so the trail never says "approved"
for a request that is still pending, nor misses a decision that took effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from memory.approval_models import Approval, PolicyGrant
from memory.audit import AuditLog
from memory.db import Database
from memory.models import Message, MessageStatus, OutboxItem, OutboxStatus
from memory.outbox import OutboxEntry
from memory.types import utcnow

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"


@dataclass(frozen=True, kw_only=True)
class ApprovalRecord:
    """One approval request."""

    id: int
    user_id: int
    message_id: int
    call_id: str
    tool: str
    risk: str
    target: str
    grant_target: str
    arguments: str
    reason: str
    channel: str
    chat_id: str
    status: str
    always: bool
    outbox_id: int | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_via: str | None


@dataclass(frozen=True, kw_only=True)
class NewApproval:
    """What the gate asks about."""

    user_id: int
    message_id: int
    call_id: str
    tool: str
    risk: str
    target: str
    arguments: str
    reason: str
    channel: str
    chat_id: str
    expires_at: datetime
    grant_target: str = ""


Render = Callable[[int], tuple[str, list[list[tuple[str, str]]]]]
"""Builds the request message (text, buttons) for an approval id."""


def _record(row: Approval) -> ApprovalRecord:
    return ApprovalRecord(
        id=row.id,
        user_id=row.user_id,
        message_id=row.message_id,
        call_id=row.call_id,
        tool=row.tool,
        risk=row.risk,
        target=row.target,
        grant_target=row.grant_target,
        arguments=row.arguments,
        reason=row.reason,
        channel=row.channel,
        chat_id=row.chat_id,
        status=row.status,
        always=row.always,
        outbox_id=row.outbox_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        decided_via=row.decided_via,
    )


def _audit_detail(row: ApprovalRecord | NewApproval, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": row.message_id,
        "call_id": row.call_id,
        "risk": row.risk,
        "arguments": row.arguments[:2000],
        **extra,
    }


class ApprovalStore:
    """Reads and changes approval requests and the grants "Always allow" creates."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def request(
        self, new: NewApproval, render: Render
    ) -> tuple[ApprovalRecord, OutboxEntry | None]:
        """Create the request, its message and the waiting state; idempotent per tool call.

        Returns the approval and the request message to deliver (None when it existed already).
        """
        existing = await self.find(new.message_id, new.call_id)
        if existing is not None:
            return existing, None
        now = utcnow()
        try:
            async with self._db.engine.begin() as conn:
                approval_id = (
                    await conn.execute(
                        insert(Approval)
                        .values(
                            user_id=new.user_id,
                            message_id=new.message_id,
                            call_id=new.call_id,
                            tool=new.tool,
                            risk=new.risk,
                            target=new.target[:300],
                            grant_target=new.grant_target[:300],
                            arguments=new.arguments,
                            reason=new.reason[:300],
                            channel=new.channel,
                            chat_id=new.chat_id,
                            status=PENDING,
                            always=False,
                            created_at=now,
                            expires_at=new.expires_at,
                        )
                        .returning(Approval.id)
                    )
                ).scalar_one()
                text, buttons = render(approval_id)
                outbox_id = (
                    await conn.execute(
                        insert(OutboxItem)
                        .values(
                            channel=new.channel,
                            chat_id=new.chat_id,
                            text=text,
                            buttons=json.dumps(buttons, ensure_ascii=False),
                            status=OutboxStatus.SENDING,
                            parts_sent=0,
                            attempts=1,
                            next_attempt_at=now,
                            created_at=now,
                        )
                        .returning(OutboxItem.id)
                    )
                ).scalar_one()
                await conn.execute(
                    update(Approval).where(Approval.id == approval_id).values(outbox_id=outbox_id)
                )
                await conn.execute(
                    update(Message)
                    .where(Message.id == new.message_id)
                    .values(status=MessageStatus.WAITING)
                )
                await self._audit.append(
                    actor="agent",
                    action="approval_requested",
                    user_id=new.user_id,
                    target=new.tool,
                    detail=_audit_detail(new, approval_id=approval_id, reason=new.reason),
                    conn=conn,
                )
        except IntegrityError:
            # A concurrent turn of the same message created it first.
            found = await self.find(new.message_id, new.call_id)
            if found is None:
                raise
            return found, None
        record = await self.get(approval_id)
        assert record is not None
        entry = OutboxEntry(
            id=outbox_id,
            channel=new.channel,
            chat_id=new.chat_id,
            text=text,
            parts_sent=0,
            attempts=1,
            reply_to_channel_message_id=None,
            channel_message_ids=[],
            buttons=buttons,
        )
        return record, entry

    async def get(self, approval_id: int) -> ApprovalRecord | None:
        """One request by id."""
        async with self._db.sessions() as session:
            row = await session.get(Approval, approval_id)
            return _record(row) if row else None

    async def find(self, message_id: int, call_id: str) -> ApprovalRecord | None:
        """The request for one tool call of one turn, if it was made."""
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(Approval).where(
                    Approval.message_id == message_id, Approval.call_id == call_id
                )
            )
            return _record(row) if row else None

    async def for_message(self, message_id: int) -> list[ApprovalRecord]:
        """Every request one turn made, in order."""
        query = select(Approval).where(Approval.message_id == message_id).order_by(Approval.id)
        async with self._db.sessions() as session:
            return [_record(r) for r in (await session.scalars(query)).all()]

    async def listing(
        self, *, user_id: int | None = None, status: str | None = PENDING, limit: int = 100
    ) -> list[ApprovalRecord]:
        """Requests, newest first (one user's with `user_id`)."""
        query = select(Approval).order_by(Approval.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(Approval.user_id == user_id)
        if status is not None:
            query = query.where(Approval.status == status)
        async with self._db.sessions() as session:
            return [_record(r) for r in (await session.scalars(query)).all()]

    async def decide(
        self,
        approval_id: int,
        *,
        approve: bool,
        via: str,
        user_id: int | None = None,
        always: bool = False,
    ) -> tuple[ApprovalRecord | None, bool]:
        """Approve or reject a pending request once; returns (request, whether this call decided).

        `user_id` restricts the decision to the request's own user (chat buttons); None is the
        owner's CLI. A second press finds the request decided and changes nothing.
        """
        status = APPROVED if approve else REJECTED
        now = utcnow()
        conditions = [Approval.id == approval_id, Approval.status == PENDING]
        if user_id is not None:
            conditions.append(Approval.user_id == user_id)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(Approval)
                .where(and_(*conditions))
                .values(status=status, always=approve and always, decided_at=now, decided_via=via)
            )
            changed = bool(result.rowcount)
            if changed:
                record = await self._get(conn, approval_id)
                await self._audit.append(
                    actor="user" if via != "expiry" else "system",
                    action=f"approval_{status}",
                    user_id=record.user_id,
                    target=record.tool,
                    detail=_audit_detail(record, approval_id=approval_id, via=via, always=always),
                    conn=conn,
                )
                if approve and always:
                    await self._grant(conn, record)
        record_now = await self.get(approval_id)
        if record_now is not None and user_id is not None and record_now.user_id != user_id:
            return None, False  # someone else's request: not even its existence is shown
        return record_now, changed

    async def expire_due(self, now: datetime | None = None) -> list[ApprovalRecord]:
        """Expire pending requests past their time; returns the ones this call expired."""
        now = now or utcnow()
        async with self._db.sessions() as session:
            due = (
                await session.scalars(
                    select(Approval.id).where(
                        Approval.status == PENDING, Approval.expires_at <= now
                    )
                )
            ).all()
        expired: list[ApprovalRecord] = []
        for approval_id in due:
            async with self._db.engine.begin() as conn:
                result = await conn.execute(
                    update(Approval)
                    .where(Approval.id == approval_id, Approval.status == PENDING)
                    .values(status=EXPIRED, decided_at=now, decided_via="expiry")
                )
                if not result.rowcount:
                    continue
                record = await self._get(conn, approval_id)
                await self._audit.append(
                    actor="system",
                    action="approval_expired",
                    user_id=record.user_id,
                    target=record.tool,
                    detail=_audit_detail(record, approval_id=approval_id),
                    conn=conn,
                )
            expired.append(record)
        return expired

    async def decided_waiting(self) -> list[int]:
        """Messages still waiting although their request was decided (the turn must resume)."""
        query = (
            select(Approval.message_id)
            .join(Message, Message.id == Approval.message_id)
            .where(Message.status == MessageStatus.WAITING, Approval.status != PENDING)
            .distinct()
        )
        async with self._db.sessions() as session:
            return list((await session.scalars(query)).all())

    async def wake(self, message_id: int) -> bool:
        """Move a waiting message back to the queue's state; True for the one caller that did."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == MessageStatus.WAITING)
                .values(status=MessageStatus.PENDING)
            )
        return bool(result.rowcount)

    async def _get(self, conn: AsyncConnection, approval_id: int) -> ApprovalRecord:
        row = (
            await conn.execute(
                select(*Approval.__table__.columns).where(Approval.id == approval_id)
            )
        ).one()
        return ApprovalRecord(**row._asdict())

    async def _grant(self, conn: AsyncConnection, record: ApprovalRecord) -> None:
        exists = await conn.scalar(
            select(PolicyGrant.id).where(
                PolicyGrant.user_id == record.user_id,
                PolicyGrant.tool == record.tool,
                PolicyGrant.target == record.grant_target,
            )
        )
        if exists is not None:
            return
        grant_id = (
            await conn.execute(
                insert(PolicyGrant)
                .values(
                    user_id=record.user_id,
                    tool=record.tool,
                    target=record.grant_target,
                    approval_id=record.id,
                    created_at=utcnow(),
                )
                .returning(PolicyGrant.id)
            )
        ).scalar_one()
        await self._audit.append(
            actor="user",
            action="policy_grant_added",
            user_id=record.user_id,
            target=record.tool,
            detail={
                "grant_id": grant_id,
                "target": record.grant_target,
                "approval_id": record.id,
            },
            conn=conn,
        )
