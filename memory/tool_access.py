"""Per-user tool switches, and the defaults they override.

Defaults: built-in tools are on for everyone; tools that reach the owner's systems — HTTP,
OpenAPI and MCP tools — are on for the owner only, because a paired friend should not be able
to book the owner's meeting rooms just by asking. The owner switches them on per user.

When several rules match a tool, the most specific wins: an exact name beats a source
(`openapi:office`), which beats a pattern; among patterns the longer one wins.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, insert, select, update

from memory.audit import AuditLog
from memory.db import Database
from memory.tool_access_models import ToolAccessRule
from memory.types import utcnow


@dataclass(frozen=True, kw_only=True)
class AccessRule:
    """A user's switch, as listed by `dadang tools access`."""

    pattern: str
    enabled: bool


_TABLE: Table = cast(Table, ToolAccessRule.__table__)


class ToolAccess:
    """Reads and writes the `tool_access` table."""

    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    async def rules(self, user_id: int) -> list[AccessRule]:
        """The user's switches, by pattern."""
        query = (
            select(ToolAccessRule.pattern, ToolAccessRule.enabled)
            .where(ToolAccessRule.user_id == user_id)
            .order_by(ToolAccessRule.pattern)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AccessRule(pattern=p, enabled=bool(e)) for p, e in rows]

    async def set(self, user_id: int, pattern: str, *, enabled: bool, actor: str = "cli") -> None:
        """Switch `pattern` on or off for the user (replacing an earlier switch of it); the
        change is audited in the same transaction."""
        table = _TABLE
        async with self._db.engine.begin() as conn:
            updated = await conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.pattern == pattern)
                .values(enabled=enabled, updated_at=utcnow())
            )
            if not updated.rowcount:
                await conn.execute(
                    insert(table).values(
                        user_id=user_id, pattern=pattern, enabled=enabled, updated_at=utcnow()
                    )
                )
            await self._audit.append(
                actor=actor,
                action="tool_enabled" if enabled else "tool_disabled",
                user_id=user_id,
                target=pattern,
                conn=conn,
            )

    async def clear(self, user_id: int, pattern: str, *, actor: str = "cli") -> bool:
        """Remove a switch (the default applies again); False when there was none."""
        table = _TABLE
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(table.c.user_id == user_id, table.c.pattern == pattern)
            )
            if not result.rowcount:
                return False
            await self._audit.append(
                actor=actor, action="tool_access_reset", user_id=user_id, target=pattern, conn=conn
            )
        return True


def is_enabled(name: str, source: str, *, owner: bool, rules: list[AccessRule]) -> bool:
    """Whether a tool (`name` from `source`) is on for a user with these switches."""
    best: tuple[int, int] | None = None
    decision = False
    for rule in rules:
        rank = _specificity(rule.pattern, name, source)
        if rank is not None and (best is None or rank > best):
            best, decision = rank, rule.enabled
    if best is not None:
        return decision
    return owner or source == "builtin"


def _specificity(pattern: str, name: str, source: str) -> tuple[int, int] | None:
    if pattern == name:
        return (3, len(pattern))
    if pattern == source:
        return (2, len(pattern))
    if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(source, pattern):
        return (1, len(pattern))
    return None
