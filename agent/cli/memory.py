"""`dadang memory list|search|show|forget|export|import|reindex`: the user's control over memory."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, Field, ValidationError, field_validator

from agent.cli.common import ready_settings
from agent.cli.users import resolve_user
from agent.memory_setup import build_memory
from memory.db import open_database
from memory.identities import IdentityStore
from memory.memories import MemoryRecord, NewMemory
from memory.models import MemoryKind
from memory.recall import Hit
from memory.service import MemoryService

memory_app = typer.Typer(help="See, search, correct, export, import and forget memories.")
T = TypeVar("T")
UserOption = Annotated[str, typer.Option("--user", "-u", help="user id, owner, CHANNEL:ID or name")]


def _run(body: Callable[[MemoryService, IdentityStore], Awaitable[T]], *, index: bool = True) -> T:
    settings = ready_settings()

    async def go() -> T:
        db = open_database(settings.effective_database_url)
        service = build_memory(settings, db)
        identities = IdentityStore(db)
        await identities.ensure_owner(name=settings.owner_name)
        try:
            if index:
                await service.start()
            return await body(service, identities)
        finally:
            await service.close()
            await db.dispose()

    return asyncio.run(go())


def _public_id(record: MemoryRecord) -> str | int:
    return record.external_id or record.id


def _as_json(record: MemoryRecord, score: float | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": _public_id(record),
        "content": record.content,
        "kind": record.kind,
        "created_at": record.valid_from.isoformat(),
    }
    if score is not None:
        data["score"] = round(score, 6)
    return data


def _full(record: MemoryRecord) -> dict[str, Any]:
    return {
        **_as_json(record),
        "memory_id": record.id,
        "importance": record.importance,
        "confidence": record.confidence,
        "valid_to": record.valid_to.isoformat() if record.valid_to else None,
        "subject": record.subject,
        "entities": record.entities,
        "supersedes": record.supersedes_id,
        "source_message_ids": record.source_message_ids,
        "stored_at": record.created_at.isoformat(),
    }


async def _find(service: MemoryService, user_id: int, memory_id: str) -> MemoryRecord | None:
    """A memory by its number or by the external id it was imported with."""
    if memory_id.isdigit():
        found = await service.store.get(user_id, int(memory_id))
        if found is not None:
            return found
    return await service.store.by_external_id(user_id, memory_id)


@memory_app.command("list")
def list_memories(
    user: UserOption = "owner",
    kind: Annotated[str | None, typer.Option(help="only this kind")] = None,
    history: Annotated[bool, typer.Option("--history", help="include superseded")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List memories, newest first."""

    async def body(service: MemoryService, identities: IdentityStore) -> None:
        uid = await resolve_user(identities, user)
        records = await service.store.recent(
            uid, kinds=[kind] if kind else None, include_history=history, limit=limit
        )
        if as_json:
            typer.echo(json.dumps([_full(r) for r in records], ensure_ascii=False, indent=2))
            return
        if not records:
            typer.echo("no memories yet")
        for r in records:
            old = "" if r.current else "  (superseded)"
            typer.echo(f"{_public_id(r)}  [{r.kind}] {r.valid_from:%Y-%m-%d}  {r.content}{old}")

    _run(body, index=False)


@memory_app.command("search")
def search(
    query: Annotated[str | None, typer.Argument(help="what to look for")] = None,
    user: UserOption = "owner",
    limit: Annotated[int, typer.Option("--limit", "-k", min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    queries: Annotated[
        Path | None,
        typer.Option(help="JSON Lines of {query, qid?, asked_at?}: one result line per query"),
    ] = None,
) -> None:
    """Hybrid search (meaning + keywords + dates), as the assistant recalls."""
    if query is None and queries is None:
        typer.echo("error: give a QUERY or --queries FILE.jsonl", err=True)
        raise typer.Exit(2)

    async def body(service: MemoryService, identities: IdentityStore) -> None:
        uid = await resolve_user(identities, user)
        if queries is not None:
            for number, line in enumerate(_lines(queries), start=1):
                try:
                    item = json.loads(line)
                    text = str(item["query"])
                except (ValueError, KeyError, TypeError):
                    typer.echo(f"error: {queries}:{number}: not an object with `query`", err=True)
                    continue
                now = _parse_time(item.get("asked_at") or item.get("now"))
                hits = await service.search(uid, text, limit=limit, now=now)
                out = {"qid": item.get("qid"), "query": text, "hits": _hits(hits)}
                typer.echo(json.dumps(out, ensure_ascii=False))
            return
        assert query is not None
        hits = await service.search(uid, query, limit=limit)
        if as_json:
            typer.echo(json.dumps(_hits(hits), ensure_ascii=False, indent=2))
            return
        if not hits:
            typer.echo("nothing found")
        for hit in hits:
            r = hit.memory
            typer.echo(
                f"{_public_id(r)}  {hit.score:.4f}  [{r.kind}] {r.valid_from:%Y-%m-%d}  {r.content}"
            )

    _run(body)


def _hits(hits: list[Hit]) -> list[dict[str, Any]]:
    return [_as_json(h.memory, h.score) for h in hits]


@memory_app.command("show")
def show(memory_id: str, user: UserOption = "owner") -> None:
    """Everything stored about one memory, with what it superseded."""

    async def body(service: MemoryService, identities: IdentityStore) -> None:
        uid = await resolve_user(identities, user)
        record = await _find(service, uid, memory_id)
        if record is None:
            typer.echo(f"error: user has no memory {memory_id}", err=True)
            raise typer.Exit(1)
        chain = [_full(record)]
        while record.supersedes_id is not None:
            older = await service.store.get(uid, record.supersedes_id)
            if older is None:
                break
            chain.append(_full(older))
            record = older
        typer.echo(json.dumps(chain, ensure_ascii=False, indent=2))

    _run(body, index=False)


@memory_app.command("forget")
def forget(memory_id: str, user: UserOption = "owner") -> None:
    """Delete a memory from the database and the vector index, for good."""

    async def body(service: MemoryService, identities: IdentityStore) -> None:
        uid = await resolve_user(identities, user)
        record = await _find(service, uid, memory_id)
        if record is None or not await service.forget(uid, record.id):
            typer.echo(f"error: user has no memory {memory_id}", err=True)
            raise typer.Exit(1)
        # Only the owner has this terminal. The kind, never the content: the audit row must not
        # keep a copy of what was asked to be forgotten. `MemoryService.forget` takes no
        # connection, so the row follows the deletion rather than sharing its transaction.
        await identities.audit.append(
            actor="owner",
            action="memory_deleted",
            user_id=uid,
            target=f"memory:{record.id}",
            detail={"kind": record.kind},
        )
        typer.echo(f"forgot {memory_id}: {record.content}")

    _run(body)


@memory_app.command("export")
def export(
    user: UserOption = "owner",
    history: Annotated[bool, typer.Option("--history/--current", help="include superseded")] = True,
) -> None:
    """Print every memory as JSON Lines (re-importable with `dadang memory import`)."""

    async def body(service: MemoryService, identities: IdentityStore) -> None:
        uid = await resolve_user(identities, user)
        offset = 0
        while True:
            page = await service.store.recent(
                uid, include_history=history, limit=1000, offset=offset
            )
            for record in page:
                typer.echo(json.dumps(_full(record), ensure_ascii=False))
            if len(page) < 1000:
                return
            offset += len(page)

    _run(body, index=False)


class ImportLine(BaseModel):
    """One line of an import file."""

    content: str = Field(min_length=1)
    kind: str = MemoryKind.FACT
    created_at: datetime | None = None
    id: str | int | None = None
    importance: float = Field(default=0.5, ge=0, le=1)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in MemoryKind.__members__.values():
            raise ValueError(f"unknown kind; use one of {', '.join(MemoryKind)}")
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


@memory_app.command("import")
def import_(file: Path, user: UserOption = "owner") -> None:
    """Import JSON Lines ({content, kind?, created_at?, id?, importance?}); idempotent on id."""
    items: list[NewMemory] = []
    bad = 0
    for number, line in enumerate(_lines(file), start=1):
        try:
            parsed = ImportLine.model_validate_json(line)
        except ValidationError as exc:
            bad += 1
            problem = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors()
            )
            typer.echo(f"error: {file}:{number}: {problem}", err=True)
            continue
        items.append(
            NewMemory(
                content=parsed.content,
                kind=parsed.kind,
                importance=parsed.importance,
                valid_from=parsed.created_at,
                external_id=str(parsed.id) if parsed.id is not None else None,
                confidence=1.0,
            )
        )

    async def body(service: MemoryService, identities: IdentityStore) -> tuple[int, int]:
        uid = await resolve_user(identities, user, create=True)
        return await service.import_many(uid, items)

    added, skipped = _run(body)
    typer.echo(f"imported {added}, skipped {skipped} already present, {bad} invalid lines")
    if bad:
        raise typer.Exit(1)


@memory_app.command("reindex")
def reindex() -> None:
    """Rebuild the vector index from the database (the source of truth)."""

    async def body(service: MemoryService, identities: IdentityStore) -> int:
        return await service.reindex()

    typer.echo(f"reindexed {_run(body)} memories")


def _lines(path: Path) -> list[str]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(1) from exc
    return [line for line in text.splitlines() if line.strip()]


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
