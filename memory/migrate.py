"""Apply Alembic migrations; called by `dadang init` and `dadang run` before anything else."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from memory.db import sync_url
from memory.errors import DatabaseUnavailable, MigrationError

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic config pointing at Dadang's revisions and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option(
        "sqlalchemy.url", sync_url(url).render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this version of Dadang."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}") from exc
    finally:
        engine.dispose()


def upgrade(url: str | URL) -> None:
    """Bring the database at `url` to the head revision (blocking; run it in a thread).

    Raises:
        DatabaseUnavailable: the database cannot be reached.
        MigrationError: a revision failed to apply.
    """
    sync = sync_url(url)
    if sync.get_backend_name() == "sqlite" and sync.database not in (None, "", ":memory:"):
        Path(sync.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        if sync.get_backend_name() == "postgresql":
            _upgrade_locked(url)
        else:
            command.upgrade(alembic_config(url), "head")
    except OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database ({exc.orig}); check DADANG_DATABASE_URL and run "
            "`dadang doctor`"
        ) from exc
    except SQLAlchemyError as exc:
        raise MigrationError(f"migrating the database failed: {exc}") from exc


_MIGRATION_LOCK = 0x64616461  # "dada": one key for every Dadang database
"""PostgreSQL advisory lock held while migrating."""


def _upgrade_locked(url: str | URL) -> None:
    """Migrate under a PostgreSQL advisory lock.

    Several replicas starting together on an empty database would otherwise all run the first
    revision at once and fail on each other's tables; with the lock, one migrates and the others
    wait, then find nothing left to do.
    """
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            conn.commit()
            try:
                cfg = alembic_config(url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()
