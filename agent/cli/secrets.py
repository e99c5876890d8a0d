"""`dadang secrets set|list|delete|rotate-key|new-key`: site passwords and API tokens at rest.

Values are read from standard input or a hidden prompt, never from the command line (which other
users can see in `ps`), and are never printed.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from agent.settings import Settings
from memory.db import open_database
from memory.identities import IdentityStore
from memory.secrets import KEY_FILE, Key, Keyring, SecretError, SecretStore

secrets_app = typer.Typer(help="Store, list and delete secrets (encrypted at rest).")
T = TypeVar("T")
UserOption = Annotated[str, typer.Option("--user", "-u", help="user id, owner, CHANNEL:ID or name")]


def _keyring(settings: Settings) -> Keyring:
    env = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        return Keyring.load(settings.home, env)
    except SecretError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(body: Callable[[SecretStore, IdentityStore, Settings], Awaitable[T]]) -> T:
    settings = ready_settings()
    keyring = _keyring(settings)

    async def go() -> T:
        db = open_database(settings.effective_database_url)
        identities = IdentityStore(db)
        await identities.ensure_owner(name=settings.owner_name)
        try:
            return await body(SecretStore(db, keyring), identities, settings)
        except SecretError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            await db.dispose()

    return asyncio.run(go())


@secrets_app.command("set")
def set_secret(name: str, user: UserOption = "owner") -> None:
    """Store NAME; the value comes from stdin (or a hidden prompt on a terminal)."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"value for {name}: ")
    else:
        value = sys.stdin.read().rstrip("\r\n")

    async def body(store: SecretStore, identities: IdentityStore, s: Settings) -> bool:
        user_id = await resolve_user(identities, user)
        created = await store.set(user_id, name, value)
        await store.audit.append(actor="cli", action="secret_set", user_id=user_id, target=name)
        return created

    created = _run(body)
    typer.echo(f"{'stored' if created else 'replaced'} secret {name}")


@secrets_app.command("list")
def list_secrets(user: UserOption = "owner") -> None:
    """Names of the user's secrets (never values)."""

    async def body(store: SecretStore, identities: IdentityStore, s: Settings) -> None:
        infos = await store.names(await resolve_user(identities, user))
        for info in infos:
            typer.echo(f"{info.name}\tupdated {info.updated_at:%Y-%m-%d %H:%M}\tkey {info.key_id}")
        if not infos:
            typer.echo("no secrets", err=True)

    _run(body)


@secrets_app.command("delete")
def delete_secret(name: str, user: UserOption = "owner") -> None:
    """Delete NAME."""

    async def body(store: SecretStore, identities: IdentityStore, s: Settings) -> bool:
        user_id = await resolve_user(identities, user)
        deleted = await store.delete(user_id, name)
        if deleted:
            await store.audit.append(
                actor="cli", action="secret_delete", user_id=user_id, target=name
            )
        return deleted

    if not _run(body):
        typer.echo(f"error: no secret named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"deleted secret {name}")


@secrets_app.command("new-key")
def new_key() -> None:
    """Print a fresh key for DADANG_SECRET_KEY."""
    typer.echo(Key.generate().text())


@secrets_app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every secret under a new key file (keys from the environment: see README)."""
    settings = ready_settings()
    if settings.secret_key is not None:
        typer.echo(
            "error: the key comes from DADANG_SECRET_KEY, which this command cannot rewrite. "
            "Stop the service, then with DADANG_SECRET_KEY unset write the current key to "
            f"{settings.home / KEY_FILE}, run `dadang secrets rotate-key`, and put the new key "
            "from that file into DADANG_SECRET_KEY before starting again (deploy/README.md)",
            err=True,
        )
        raise typer.Exit(2)
    keyring = _keyring(settings)
    path = settings.home / KEY_FILE
    pending = settings.home / f"{KEY_FILE}.new"
    new = Key.parse(pending.read_text()) if pending.exists() else Key.generate()
    if not pending.exists():
        descriptor = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(new.text() + "\n")
        keyring = _keyring(settings)  # now also accepts the pending key

    async def go() -> int:
        db = open_database(settings.effective_database_url)
        try:
            return await SecretStore(db, keyring).reencrypt_all(new)
        finally:
            await db.dispose()

    try:
        count = asyncio.run(go())
    except SecretError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # The database now needs the new key; the old one is kept beside it until this succeeds.
    os.replace(pending, path)
    typer.echo(f"re-encrypted {count} secrets under key {new.key_id}")
