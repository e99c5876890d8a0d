"""How the CLI names users: `--user 3`, `--user owner`, `--user telegram:12345`, `--user alice`."""

from __future__ import annotations

import typer

from memory.identities import IdentityStore


async def resolve_user(identities: IdentityStore, spec: str, *, create: bool = False) -> int:
    """The user id `spec` names; with `create`, an unknown plain name becomes a new user.

    Raises:
        typer.Exit: no such user (the message lists the accepted forms).
    """
    spec = spec.strip()
    if spec == "owner":
        owner = await identities.owner()
        if owner is not None:
            return owner.id
    elif spec.isdigit():
        if await identities.get_user(int(spec)) is not None:
            return int(spec)
    elif ":" in spec:
        channel, _, external = spec.partition(":")
        found = await identities.user_for(channel, external)
        if found is not None:
            return found
    else:
        found = await identities.user_named(spec)
        if found is not None:
            return found
    if create and not spec.isdigit() and ":" not in spec and spec != "owner":
        return await identities.create_user(spec)
    typer.echo(
        f"error: no user {spec!r}; use a user id, `owner`, CHANNEL:ID (e.g. telegram:12345) or "
        "a user name (`dadang pair list --all` shows paired people)",
        err=True,
    )
    raise typer.Exit(1)
