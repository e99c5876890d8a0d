"""Alembic environment: migrates the URL `memory.migrate` puts into the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import memory.approval_models
import memory.audit_models
import memory.file_models
import memory.proactive_models
import memory.secret_models
import memory.tool_access_models  # noqa: F401  (registers the tool_access table)
from memory.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Run every pending revision in one transaction per revision."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
