"""`dadang pair list|approve|reject|revoke`: the owner decides who may talk to the assistant.

Each decision is written to the audit log with the record it changes (see `IdentityStore`).
A revoke keeps the person's user and data; approving them again later re-admits them to it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, NoReturn

import typer

from agent.cli.common import ready_settings
from agent.runtime.replies import reply
from agent.settings import Settings
from memory.db import open_database
from memory.identities import IdentityStore, OwnerIdentityError, Pairing, Revoked
from memory.models import PairingStatus
from memory.outbox import OutboxStore
from memory.proactive_models import ReminderStatus
from memory.reminders import HeldRun, ReminderStore

pair_app = typer.Typer(help="Approve, reject or revoke people who asked to use this assistant.")


@pair_app.command("list")
def list_pairings(
    all_: Annotated[bool, typer.Option("--all", help="Include decided requests")] = False,
) -> None:
    """Show pairing requests (pending ones by default)."""
    settings = ready_settings()

    async def go() -> list[Pairing]:
        db = open_database(settings.effective_database_url)
        try:
            return await IdentityStore(db).pairings(status=None if all_ else "pending")
        finally:
            await db.dispose()

    rows = asyncio.run(go())
    if not rows:
        typer.echo("no pairing requests")
    for p in rows:
        typer.echo(
            f"{p.code}  {p.status:<8}  {p.channel}:{p.external_id}  {p.display_name or ''}  "
            f"{p.created_at:%Y-%m-%d %H:%M} UTC"
        )


@pair_app.command("approve")
def approve(
    code: str,
    as_owner: Annotated[
        bool, typer.Option("--as-owner", help="Link to the owner: same memory as your terminal")
    ] = False,
) -> None:
    """Admit the person who was given CODE; they are told they can start.

    Someone you revoked earlier comes back to their earlier data, unless --as-owner.
    """
    _decide(code, approve=True, as_owner=as_owner)


@pair_app.command("reject")
def reject(code: str) -> None:
    """Refuse the request with CODE."""
    _decide(code, approve=False, as_owner=False)


@pair_app.command("revoke")
def revoke(
    who: Annotated[
        str,
        typer.Argument(help="CHANNEL:ID (e.g. telegram:42) or the code they were approved with"),
    ],
) -> None:
    """Take back someone's access: they are refused and must pair again. Their data is kept.

    Nothing is sent to them unasked while revoked; approving them again restores it all.
    """
    settings = ready_settings()

    async def go() -> Revoked:
        db = open_database(settings.effective_database_url)
        try:
            store = IdentityStore(db)
            channel, external_id = await _identity(store, who)
            user_id = await store.user_for(channel, external_id)
            if user_id is None:
                _fail(
                    f"{channel}:{external_id} is not paired, so there is nothing to revoke; "
                    "`dadang pair list --all` shows who asked and what was decided"
                )
            owner = await store.owner()
            if owner is not None and owner.id == user_id:
                _fail(_owner_message(channel, external_id))
            _refuse_allow_listed(settings, channel, external_id)
            try:
                revoked = await store.revoke(channel, external_id)
            except OwnerIdentityError:
                _fail(_owner_message(channel, external_id))
            if revoked is None:  # revoked by a concurrent `dadang pair revoke`
                _fail(f"{channel}:{external_id} is not paired, so there is nothing to revoke")
            return revoked
        finally:
            await db.dispose()

    done = asyncio.run(go())
    uid = done.user_id
    typer.echo(
        f"revoked {done.channel}:{done.external_id} ({done.display_name or '-'}): they are "
        "refused from now on and get a new pairing code if they write again"
    )
    typer.echo(
        f"their data stays: user {uid} keeps its memories, notes, reminders and secrets "
        f"(`dadang memory list --user {uid}`); nothing is sent to them unasked meanwhile: "
        "reminders are held back (one-off ones that come due are marked missed), no heartbeats "
        "or follow-ups; approving their new code re-admits them to all of it"
    )


async def _identity(store: IdentityStore, who: str) -> tuple[str, str]:
    """`telegram:42` as it is, or the identity a pairing code was approved for."""
    who = who.strip()
    if ":" in who:
        channel, _, external_id = who.partition(":")
        if channel and external_id:
            return channel, external_id
        _fail(f"{who!r} is not CHANNEL:ID (e.g. telegram:42) or a pairing code")
    found = await store.pairing(who)
    if found is None:
        _fail(
            f"no pairing code {who.upper()!r}; give CHANNEL:ID (e.g. telegram:42) or a code "
            "from `dadang pair list --all`"
        )
    if found.status == PairingStatus.PENDING:
        _fail(
            f"request {found.code} is still pending, nobody was admitted; refuse it with "
            f"`dadang pair reject {found.code}`"
        )
    return found.channel, found.external_id


def _refuse_allow_listed(settings: Settings, channel: str, external_id: str) -> None:
    # The runtime links allow-listed Telegram ids on sight, so a revoke would be undone by the
    # person's next message: say what to change instead of pretending it worked.
    allowed = settings.telegram_allowed_users
    if channel == "telegram" and external_id.isdigit() and int(external_id) in allowed:
        _fail(
            f"telegram:{external_id} is in telegram_allowed_users, so `dadang run` admits it "
            "without pairing and would link it again on its next message; remove it from "
            "DADANG_TELEGRAM_ALLOWED_USERS (or telegram_allowed_users in dadang.toml), "
            "restart `dadang run`, then revoke"
        )


def _owner_message(channel: str, external_id: str) -> str:
    return (
        f"{channel}:{external_id} is the owner's own identity and cannot be revoked "
        "(it would lock you out of your assistant)"
    )


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _decide(code: str, *, approve: bool, as_owner: bool) -> None:
    settings = ready_settings()

    async def go() -> tuple[Pairing | None, list[HeldRun]]:
        db = open_database(settings.effective_database_url)
        try:
            store = IdentityStore(db)
            owner = await store.owner() if as_owner else None
            decided = await store.decide_pairing(
                code, approve=approve, user_id=owner.id if owner else None
            )
            held: list[HeldRun] = []
            if decided is not None and approve:
                # The running service delivers this from the outbox.
                await OutboxStore(db).add(
                    channel=decided.channel,
                    chat_id=decided.chat_id,
                    text=reply("paired", "en") + "\n" + reply("paired", "zh"),
                )
                if decided.readmitted and decided.user_id and decided.revoked_at:
                    held = await ReminderStore(db).held_since(decided.user_id, decided.revoked_at)
            return decided, held
        finally:
            await db.dispose()

    decided, held = asyncio.run(go())
    if decided is None:
        typer.echo(
            f"no pending pairing request with code {code.upper()}; see `dadang pair list`", err=True
        )
        raise typer.Exit(1)
    who = f"{decided.channel}:{decided.external_id} ({decided.display_name or '-'})"
    if decided.readmitted:
        typer.echo(f"re-admitted {who} with their earlier data (user {decided.user_id})")
        _report_held(held)
    elif decided.previous_user_id is not None:
        old = decided.previous_user_id
        typer.echo(
            f"approved {who} as you (the owner); the conversation in their chat moved to you, "
            f"the rest of their earlier data stays with user {old}, which no identity reaches "
            f"any more (`dadang memory list --user {old}`, `dadang jobs list --user {old}`)"
        )
    else:
        verb = "approved" if approve else "rejected"
        typer.echo(f"{verb} {who}")


def _report_held(held: list[HeldRun]) -> None:
    """What came due while the person was revoked, so it is not silently lost."""
    if not held:
        return
    typer.echo(
        f"{len(held)} reminder firing(s) came due while they were revoked and were not sent:"
    )
    fates: dict[str, str] = {
        ReminderStatus.MISSED: "missed",
        ReminderStatus.ACTIVE: "recurring: fires again from its next time",
    }
    for run in held:
        fate = fates.get(run.status, run.status)
        typer.echo(f"  #{run.reminder_id}  {run.run_time:%Y-%m-%d %H:%M} UTC  {fate}  {run.text}")
