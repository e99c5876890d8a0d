"""`dadang`: init, run, chat, doctor, version, pair, memory, jobs, proactive."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from typing import Annotated, Any

import typer

from agent import __version__
from agent.cli.approvals import approvals_app
from agent.cli.audit import audit_app
from agent.cli.common import migrate_or_exit, settings_or_exit, wait_for_database
from agent.cli.config_file import render_config, write_config
from agent.cli.doctor import doctor_command
from agent.cli.jobs import jobs_app
from agent.cli.logs import setup_logging
from agent.cli.memory import memory_app
from agent.cli.pair import pair_app
from agent.cli.policy import policy_app
from agent.cli.proactive import proactive_app
from agent.cli.secrets import secrets_app
from agent.cli.tools import tools_app
from agent.errors import ConfigError
from agent.settings import Settings

app = typer.Typer(
    help="Dadang (搭档): your self-hosted, proactive personal assistant.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(pair_app, name="pair")
app.add_typer(memory_app, name="memory")
app.add_typer(jobs_app, name="jobs")
app.add_typer(proactive_app, name="proactive")
app.add_typer(secrets_app, name="secrets")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(approvals_app, name="approvals")
app.add_typer(tools_app, name="tools")
app.command("doctor")(doctor_command)


@app.command()
def version() -> None:
    """Print Dadang's version."""
    typer.echo(f"dadang {__version__}")


@app.command()
def init() -> None:
    """Write DADANG_HOME/dadang.toml (commented defaults) and create the database. Safe twice."""
    settings = settings_or_exit()
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.config_path
    if path.exists():
        typer.echo(f"kept existing config {path}")
    else:
        chosen: dict[str, Any] = {}
        if sys.stdin.isatty():
            chosen = _ask(settings)
        write_config(path, render_config(settings, chosen=chosen))
        typer.echo(f"wrote {path}")
        settings = settings_or_exit()
    migrate_or_exit(settings)
    asyncio.run(_ensure_owner(settings))
    typer.echo(f"database ready: {_safe_url(settings.effective_database_url)}")
    typer.echo("next: `dadang doctor`, then `dadang run` (or `dadang chat` in this terminal)")


def _ask(settings: Settings) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    url = typer.prompt("LLM base URL (vLLM serves /v1)", default=settings.llm_base_url)
    if url != settings.llm_base_url:
        chosen["llm_base_url"] = url
    token = getpass.getpass("Telegram bot token (Enter to skip): ").strip()
    if token:
        chosen["telegram_token"] = token
        ids = typer.prompt("Your Telegram user id(s), comma-separated", default="").strip()
        if ids:
            chosen["telegram_allowed_users"] = [int(i) for i in ids.split(",") if i.strip()]
    zone = typer.prompt("Time zone", default=settings.timezone)
    if zone != settings.timezone:
        chosen["timezone"] = zone
    return chosen


async def _ensure_owner(settings: Settings) -> None:
    from memory.db import open_database
    from memory.identities import IdentityStore

    db = open_database(settings.effective_database_url)
    try:
        await IdentityStore(db).ensure_owner(name=settings.owner_name)
    finally:
        await db.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def run() -> None:
    """Start the service: Telegram (if a token is set), the HTTP app, and the agent."""
    settings = settings_or_exit()
    setup_logging(settings)
    wait_for_database(settings)
    from agent.runtime.serve import serve

    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def chat(
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Send one message, print the reply, exit")
    ] = None,
) -> None:
    """Chat with the agent in this terminal (same memory and history as the other channels)."""
    settings = settings_or_exit()
    setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    migrate_or_exit(settings)
    from agent.runtime.serve import chat as run_chat

    asyncio.run(run_chat(settings, once=message))


def main() -> None:
    """Entry point for `python -m agent.cli.main`."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()


if __name__ == "__main__":
    main()
