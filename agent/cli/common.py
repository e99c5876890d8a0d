"""Helpers every CLI command shares: settings and database readiness with clear exits."""

from __future__ import annotations

import typer

from agent.errors import ConfigError
from agent.settings import Settings, load_settings
from memory.errors import StorageError
from memory.migrate import upgrade


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


def ready_settings() -> Settings:
    """Settings plus a migrated database, for commands that read or write state."""
    settings = settings_or_exit()
    migrate_or_exit(settings)
    return settings
