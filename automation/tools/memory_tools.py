"""`memory_search`, `memory_save`, `memory_forget`: the model's explicit hands on memory."""

from __future__ import annotations

import hashlib
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from automation.tools.base import RiskLevel, Tool, ToolContext, ToolError
from memory.memories import NewMemory
from memory.models import MemoryKind
from memory.service import MemoryService


def _memory(ctx: ToolContext) -> MemoryService:
    if ctx.memory is None:
        raise ToolError("long-term memory is switched off on this instance")
    return ctx.memory


class MemorySearchArgs(BaseModel):
    """Arguments of `memory_search`."""

    query: str = Field(min_length=1, description="What to look for, in any language")
    limit: int = Field(default=8, ge=1, le=30)
    include_outdated: bool = Field(default=False, description="Also superseded memories")


class MemorySearch(Tool[MemorySearchArgs]):
    """Searches what the user told the assistant before."""

    name = "memory_search"
    description = (
        "Search long-term memory about the user (preferences, moods, commitments, rejected "
        "proposals, people, projects, events). Use dates in the query for time questions."
    )
    args_model = MemorySearchArgs
    risk = RiskLevel.READ
    reads = frozenset({"memory"})

    async def run(self, args: MemorySearchArgs, ctx: ToolContext) -> str:
        hits = await _memory(ctx).search(
            ctx.user_id,
            args.query,
            limit=args.limit,
            now=ctx.now,
            include_history=args.include_outdated,
        )
        hits = [h for h in hits if ctx.scopes.allows_memory_kind(h.memory.kind)]
        if not hits:
            return "No matching memories."
        zone = ZoneInfo(ctx.timezone)
        return "\n".join(
            f"#{h.memory.id} [{h.memory.valid_from.astimezone(zone):%Y-%m-%d}, {h.memory.kind}"
            f"{'' if h.memory.current else ', outdated'}] {h.memory.content}"
            for h in hits
        )


class MemorySaveArgs(BaseModel):
    """Arguments of `memory_save`."""

    content: str = Field(min_length=1, max_length=2000, description="One self-contained sentence")
    kind: MemoryKind = Field(default=MemoryKind.FACT)
    importance: float = Field(default=0.7, ge=0, le=1)
    replaces: int | None = Field(
        default=None, description="Id of an older memory this corrects or supersedes"
    )


class MemorySave(Tool[MemorySaveArgs]):
    """Stores (or corrects) a memory because the user asked."""

    name = "memory_save"
    description = (
        "Save something about the user to long-term memory, or correct an existing memory by "
        "giving its id in `replaces` (the old one is kept as history)."
    )
    args_model = MemorySaveArgs
    risk = RiskLevel.WRITE

    async def run(self, args: MemorySaveArgs, ctx: ToolContext) -> str:
        memory = _memory(ctx)
        new = NewMemory(
            content=args.content,
            kind=args.kind,
            importance=args.importance,
            confidence=1.0,
            source_message_ids=[ctx.source_message_id] if ctx.source_message_id else [],
            # Same message + same text → same id, so a retried turn does not save twice.
            external_id=f"msg{ctx.source_message_id}:"
            + hashlib.sha256(args.content.encode()).hexdigest()[:12]
            if ctx.source_message_id
            else None,
        )
        if args.replaces is not None:
            record = await memory.supersede(ctx.user_id, args.replaces, new)
            if record is None:
                raise ToolError(f"there is no memory #{args.replaces} to replace")
            return f"Saved memory #{record.id}, replacing #{args.replaces}."
        record = await memory.remember(ctx.user_id, new)
        return f"Saved memory #{record.id}."


class MemoryForgetArgs(BaseModel):
    """Arguments of `memory_forget`."""

    memory_id: int = Field(description="The id shown as #N")


class MemoryForget(Tool[MemoryForgetArgs]):
    """Deletes a memory for good because the user asked."""

    name = "memory_forget"
    description = "Delete a memory for good (from the database, the index and future prompts)."
    args_model = MemoryForgetArgs
    risk = RiskLevel.IRREVERSIBLE

    def target(self, arguments: dict[str, Any]) -> str:
        return f"memory:{arguments.get('memory_id', '')}"

    async def run(self, args: MemoryForgetArgs, ctx: ToolContext) -> str:
        if not await _memory(ctx).forget(ctx.user_id, args.memory_id):
            raise ToolError(f"there is no memory #{args.memory_id}")
        return f"Forgot memory #{args.memory_id}."
