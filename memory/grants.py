"""Standing grants ("Always allow this") and the policy file versions the service has loaded."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from memory.approval_models import PolicyGrant, PolicyVersion
from memory.audit import AuditLog
from memory.db import Database
from memory.types import utcnow


@dataclass(frozen=True, kw_only=True)
class Grant:
    """One standing permission."""

    id: int
    user_id: int
    tool: str
    target: str
    created_at: datetime


class GrantStore:
    """Looks up, lists and withdraws grants; records policy file changes."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def find(self, user_id: int, tool: str, target: str) -> int | None:
        """The grant covering this call (one for the exact target, or for every target)."""
        if self._db.is_sqlite:
            # On the path of every `ask` call: one hand-off instead of SQLAlchemy's several.
            def lookup(sqlite: sqlite3.Connection) -> int | None:
                row = sqlite.execute(
                    "SELECT id FROM policy_grants WHERE user_id = ? AND tool = ? "
                    "AND target IN (?, '') LIMIT 1",
                    (user_id, tool, target),
                ).fetchone()
                return int(row[0]) if row else None

            return await self._db.run_sqlite(lookup)
        query = (
            select(PolicyGrant.id)
            .where(
                PolicyGrant.user_id == user_id,
                PolicyGrant.tool == tool,
                PolicyGrant.target.in_([target, ""]),
            )
            .limit(1)
        )
        async with self._db.engine.connect() as conn:
            return await conn.scalar(query)

    async def listing(self, user_id: int | None = None) -> list[Grant]:
        """Grants, oldest first (one user's with `user_id`)."""
        query = select(
            PolicyGrant.id,
            PolicyGrant.user_id,
            PolicyGrant.tool,
            PolicyGrant.target,
            PolicyGrant.created_at,
        ).order_by(PolicyGrant.id)
        if user_id is not None:
            query = query.where(PolicyGrant.user_id == user_id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Grant(**row._asdict()) for row in rows]

    async def withdraw(self, grant_id: int, *, user_id: int | None = None) -> Grant | None:
        """Delete a grant (only `user_id`'s when given); the withdrawal is audited."""
        query = select(
            PolicyGrant.id,
            PolicyGrant.user_id,
            PolicyGrant.tool,
            PolicyGrant.target,
            PolicyGrant.created_at,
        ).where(PolicyGrant.id == grant_id)
        if user_id is not None:
            query = query.where(PolicyGrant.user_id == user_id)
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(query)).one_or_none()
            if row is None:
                return None
            grant = Grant(**row._asdict())
            await conn.execute(delete(PolicyGrant).where(PolicyGrant.id == grant_id))
            await self._audit.append(
                actor="owner",
                action="policy_grant_withdrawn",
                user_id=grant.user_id,
                target=grant.tool,
                detail={"grant_id": grant.id, "target": grant.target},
                conn=conn,
            )
        return grant

    async def record_policy(self, digest: str, text: str, *, source: str) -> bool:
        """Remember the loaded policy file; a digest unlike the last one is an audited change.

        Returns True when the file changed (or was loaded for the first time).
        """
        async with self._db.engine.begin() as conn:
            last = await conn.scalar(
                select(PolicyVersion.digest).order_by(PolicyVersion.id.desc()).limit(1)
            )
            if last == digest:
                return False
            await conn.execute(
                insert(PolicyVersion).values(digest=digest, text=text, loaded_at=utcnow())
            )
            await self._audit.append(
                actor="owner",
                action="policy_changed" if last is not None else "policy_loaded",
                target="policy.yaml",
                detail={"digest": digest, "previous": last, "seen_by": source},
                conn=conn,
            )
        return True
