"""The audit trail: every tool call, data read, approval and administrative action, chained.

Each row's hash is SHA-256 over the previous row's hash and the row's canonical content
(sequence number, time, user, actor, action, target, detail), so an edited row breaks its own
hash, a deleted row leaves a sequence gap and a broken link, a reordered one a step back; rows
cut off the end disagree with `audit_head`, which is updated in the same transaction as each
append. The head row is also the lock that serialises appends across connections and processes
(its UPDATE is the first statement of every append).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from memory.audit_models import AuditEntry, AuditHead
from memory.db import Database
from memory.types import UTCDateTime, utcnow

GENESIS = "0" * 64
_CONTENT = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.user_id,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.target,
    AuditEntry.detail,
)
"""The columns a row's hash covers, in order."""


def canonical(detail: dict[str, Any]) -> str:
    """JSON with sorted keys and no spaces: the same content always hashes the same."""
    return json.dumps(
        detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )


def row_hash(
    prev: str,
    *,
    seq: int,
    at: datetime,
    user_id: int | None,
    actor: str,
    action: str,
    target: str,
    detail: str,
) -> str:
    """The chained hash of one row."""
    return _digest(prev, seq, at.isoformat(), user_id, actor, action, target, detail)


def _digest(
    prev: str,
    seq: int,
    at: str,
    user_id: int | None,
    actor: str,
    action: str,
    target: str,
    detail: str,
) -> str:
    # The one definition of the hash, `at` already formatted: stored rows depend on it.
    body = "\x1f".join([prev, str(seq), at, str(user_id), actor, action, target, detail])
    return hashlib.sha256(body.encode()).hexdigest()


def _at_isoformat(dialect: Dialect) -> Callable[[Any], str]:
    """`at.isoformat()` of the `at` that `UTCDateTime` reads, from the driver's raw value.

    The column type's own reading, minus building the aware datetime: a naive value is UTC, so
    `replace(tzinfo=UTC).isoformat()` only appends the offset.
    """
    impl = UTCDateTime().impl_instance.dialect_impl(dialect)
    parse = impl.result_processor(dialect, None)  # SQLite's text → naive datetime; None on psycopg

    def isoformat(raw: Any) -> str:
        value = parse(raw) if parse is not None else raw
        assert isinstance(value, datetime)  # as UTCDateTime asserts
        if value.tzinfo is None:
            return value.isoformat() + "+00:00"
        return value.astimezone(UTC).isoformat()

    return isoformat


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One audit row as shown by `dadang audit show`."""

    seq: int
    at: datetime
    user_id: int | None
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Problem:
    """A break in the chain, at a position the user can look up."""

    seq: int
    kind: str
    """edited, deleted, reordered, truncated."""
    message: str


def _problem(seq: int, kind: str, message: str) -> Problem:
    return Problem(seq=seq, kind=kind, message=message)


class AuditLog:
    """Appends to and reads the audit trail."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._at_bind: Any = None

    async def append(
        self,
        *,
        actor: str,
        action: str,
        user_id: int | None = None,
        target: str = "",
        detail: dict[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> int:
        """Chain one row; inside `conn`'s transaction when given (with the action's own record).

        Returns the row's sequence number.
        """
        if conn is not None:
            return await self._append(conn, actor, action, user_id, target, detail or {})
        if self._db.is_sqlite:
            return await self._append_sqlite(actor, action, user_id, target, detail or {})
        async with self._db.engine.begin() as own:
            return await self._append(own, actor, action, user_id, target, detail or {})

    async def _append_sqlite(
        self,
        actor: str,
        action: str,
        user_id: int | None,
        target: str,
        detail: dict[str, Any],
    ) -> int:
        # Every tool call appends a row. Through SQLAlchemy's async layer one append costs about
        # 1.9 ms here, nearly all of it hand-offs to aiosqlite's thread; the same statements as
        # `_append`, run as one job (`Database.run_sqlite`), about 0.4 ms (bench/audit_overhead.py).
        # BEGIN IMMEDIATE takes SQLite's write lock first, which serialises appends as the head
        # row's update does on PostgreSQL.
        if self._at_bind is None:
            dialect = self._db.engine.dialect
            at_type = AuditEntry.__table__.c.at.type
            self._at_bind = at_type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
        at_bind = self._at_bind
        body = canonical(detail)
        target = target[:300]

        def write(sqlite: sqlite3.Connection) -> int:
            sqlite.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = sqlite.execute(
                    "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"
                ).fetchone()
                at = utcnow()
                digest = row_hash(
                    prev,
                    seq=seq,
                    at=at,
                    user_id=user_id,
                    actor=actor,
                    action=action,
                    target=target,
                    detail=body,
                )
                sqlite.execute(
                    "INSERT INTO audit_log (seq, at, user_id, actor, action, target, detail, "
                    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, at_bind(at), user_id, actor, action, target, body, prev, digest),
                )
                sqlite.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (digest,))
                sqlite.execute("COMMIT")
            except BaseException:
                sqlite.execute("ROLLBACK")
                raise
            return int(seq)

        return await self._db.run_sqlite(write)

    async def _append(
        self,
        conn: AsyncConnection,
        actor: str,
        action: str,
        user_id: int | None,
        target: str,
        detail: dict[str, Any],
    ) -> int:
        # Taking the head row first serialises appends (row lock on PostgreSQL, the write lock
        # on SQLite), so two writers can never chain onto the same previous hash.
        seq, prev = (
            await conn.execute(
                update(AuditHead)
                .where(AuditHead.id == 1)
                .values(seq=AuditHead.seq + 1)
                .returning(AuditHead.seq, AuditHead.hash)
            )
        ).one()
        at = utcnow()
        body = canonical(detail)
        target = target[:300]
        digest = row_hash(
            prev,
            seq=seq,
            at=at,
            user_id=user_id,
            actor=actor,
            action=action,
            target=target,
            detail=body,
        )
        await conn.execute(
            insert(AuditEntry).values(
                seq=seq,
                at=at,
                user_id=user_id,
                actor=actor,
                action=action,
                target=target,
                detail=body,
                prev_hash=prev,
                hash=digest,
            )
        )
        await conn.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest))
        return int(seq)

    async def entries(
        self,
        *,
        user_id: int | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[AuditRecord]:
        """Rows in append order (only one user's with `user_id`)."""
        query = select(*_CONTENT).order_by(AuditEntry.seq)
        if user_id is not None:
            query = query.where(AuditEntry.user_id == user_id)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditRecord(
                seq=s, at=at, user_id=u, actor=a, action=act, target=t, detail=json.loads(d)
            )
            for s, at, u, a, act, t, d in rows
        ]

    async def verify(self, *, batch: int = 20_000) -> tuple[int, list[Problem]]:
        """Recompute the whole chain; returns (rows checked, problems found)."""
        problems: list[Problem] = []
        prev, expected, count = GENESIS, 1, 0
        at_isoformat = _at_isoformat(self._db.engine.dialect)
        async for rows in self._stream(batch):
            for seq, at, user_id, actor, action, target, detail, prev_hash, digest in rows:
                count += 1
                if seq < expected:
                    problems.append(_problem(seq, "reordered", f"row {seq} follows {expected - 1}"))
                elif seq > expected:
                    missing = f"rows {expected}..{seq - 1} are missing"
                    problems.append(_problem(expected, "deleted", missing))
                elif prev_hash != prev:
                    problems.append(_problem(seq, "edited", f"row {seq - 1} was changed"))
                at_text = at_isoformat(at)
                recomputed = _digest(
                    prev_hash, seq, at_text, user_id, actor, action, target, detail
                )
                if recomputed != digest:
                    problems.append(_problem(seq, "edited", f"row {seq} was changed"))
                prev, expected = digest, max(expected, seq + 1)
        async with self._db.engine.connect() as conn:
            head_seq, head_hash = (
                await conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1))
            ).one()
        if head_seq != expected - 1 or head_hash != prev:
            problems.append(
                Problem(
                    seq=expected,
                    kind="truncated",
                    message=(
                        f"the log ends at row {expected - 1} but {head_seq} rows were written"
                    ),
                )
            )
        return count, problems

    async def _stream(self, batch: int) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
        # The driver's own cursor: SQLAlchemy's result rows cost more than hashing them. Raw values
        # are what SQLAlchemy returns for every column but `at` (verify converts that one) as
        # long as their types convert nothing; a type that starts converting must fail here.
        dialect = self._db.engine.dialect
        query = select(*_CONTENT, AuditEntry.prev_hash, AuditEntry.hash).order_by(AuditEntry.id)
        assert all(
            c.type.dialect_impl(dialect).result_processor(dialect, None) is None
            for c in query.selected_columns
            if c.key != AuditEntry.at.key
        )
        sql = str(query.compile(dialect=dialect))
        async with self._db.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None  # only a detached connection has none
            if self._db.is_sqlite:
                cursor = await driver.execute(sql)  # aiosqlite
            else:
                cursor = driver.cursor(name="audit_verify")  # psycopg, server side
                await cursor.execute(sql)
            try:
                while rows := await cursor.fetchmany(batch):
                    yield rows
            finally:
                await cursor.close()
