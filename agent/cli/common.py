"""Helpers every CLI command shares: settings and database readiness with clear exits."""

from __future__ import annotations

import logging
import time

import typer

from agent.errors import ConfigError
from agent.settings import Settings, load_settings
from memory.errors import DatabaseUnavailable, StorageError
from memory.migrate import upgrade

log = logging.getLogger(__name__)


def settings_or_exit() -> Settings:
    """Load settings, or print what to fix and exit 2."""
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def migrate_or_exit(settings: Settings) -> None:
    """Apply migrations, or explain why the database is not usable and exit 1."""
    try:
        upgrade(settings.effective_database_url)
    except StorageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def wait_for_database(settings: Settings) -> None:
    """Migrate, retrying an unreachable database for `database_wait` seconds; exit 1 after."""
    deadline = time.monotonic() + settings.database_wait
    delay = 1.0
    while True:
        try:
            upgrade(settings.effective_database_url)
            return
        except DatabaseUnavailable as exc:
            if time.monotonic() + delay > deadline:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
            log.warning("the database is not reachable yet (%s); retrying in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        except StorageError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc


def ready_settings() -> Settings:
    """Settings plus a migrated database, for commands that read or write state."""
    settings = settings_or_exit()
    migrate_or_exit(settings)
    return settings
