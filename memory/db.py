"""Engine and session factory for SQLite (WAL) and PostgreSQL with one code path.

Users write whatever URL they know (`sqlite:///…`, `postgresql://…`); the async driver is chosen
here so the rest of the code never cares which database it runs on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

T = TypeVar("T")

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def async_url(url: str | URL) -> URL:
    """Return `url` with the async driver Dadang uses for its backend."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"unsupported database {backend!r}: set DADANG_DATABASE_URL to sqlite:///… or "
            "postgresql://…"
        )
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def sync_url(url: str | URL) -> URL:
    """Return `url` with a blocking driver, for Alembic and the CLI's short commands."""
    parsed = make_url(url)
    return parsed.set(drivername=_SYNC_DRIVERS[parsed.get_backend_name()])


def is_sqlite(url: str | URL) -> bool:
    """True when `url` points at SQLite (the embedded default)."""
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a turn writes; busy_timeout rides out short write contention
    # instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@dataclass(frozen=True, kw_only=True)
class Database:
    """An engine plus its session factory: the one handle every store receives."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    url: URL

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite backend."""
        return self.url.get_backend_name() == "sqlite"

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def run_sqlite(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run `job` with a pooled SQLite connection, on that connection's own thread.

        For the few statements on every tool call's path (the audit append, the grant
        lookup): SQLAlchemy's async layer hands each statement, fetch and commit to
        aiosqlite's thread separately, about 0.1 ms per hand-off; one job is one hand-off.
        `job` owns the transaction it opens.
        """
        assert self.is_sqlite, "run_sqlite needs the SQLite backend"
        async with self.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            # aiosqlite's `_execute` runs a callable on the connection's worker thread.
            result: T = await driver._execute(lambda: job(driver._conn))
            return result


def open_database(url: str | URL, *, pool_size: int = 10) -> Database:
    """Create the engine for `url`; nothing connects until the first query."""
    target = async_url(url)
    kwargs: dict[str, Any] = {}
    if target.get_backend_name() == "sqlite":
        # aiosqlite runs each connection in its own thread; a small pool keeps writers few.
        kwargs["pool_size"] = 4
        kwargs["max_overflow"] = 4
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    if target.database in (None, "", ":memory:") and target.get_backend_name() == "sqlite":
        kwargs = {"poolclass": NullPool}
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions, url=target)


def open_sync_engine(url: str | URL, *, pool_size: int = 2) -> Engine:
    """A blocking engine on the same database, for code that runs in its own thread.

    APScheduler's job store is synchronous and runs on the scheduler's thread, never the loop's.
    """
    target = sync_url(url)
    kwargs: dict[str, Any] = {}
    if target.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
