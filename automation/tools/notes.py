"""`remember_note` and `list_notes`: notes stored in the database for the acting user only."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from automation.tools.base import RiskLevel, Tool, ToolContext
from memory.notes import NoteStore


class RememberNoteArgs(BaseModel):
    """Arguments of `remember_note`."""

    text: str = Field(min_length=1, max_length=4000, description="What to remember, verbatim")


class RememberNote(Tool[RememberNoteArgs]):
    """Stores a note the user asked to keep."""

    name = "remember_note"
    description = "Save a note the user explicitly asks you to remember."
    args_model = RememberNoteArgs
    risk = RiskLevel.WRITE

    async def run(self, args: RememberNoteArgs, ctx: ToolContext) -> str:
        note = await NoteStore(ctx.db).add(
            user_id=ctx.user_id, text=args.text.strip(), source_message_id=ctx.source_message_id
        )
        return f"Saved note #{note.id}."


class ListNotesArgs(BaseModel):
    """Arguments of `list_notes`."""

    limit: int = Field(default=20, ge=1, le=100, description="How many of the newest notes")


class ListNotes(Tool[ListNotesArgs]):
    """Lists the user's notes, newest first."""

    name = "list_notes"
    description = "List the notes the user asked you to remember, newest first."
    args_model = ListNotesArgs
    risk = RiskLevel.READ
    reads = frozenset({"notes"})

    async def run(self, args: ListNotesArgs, ctx: ToolContext) -> str:
        notes = await NoteStore(ctx.db).list(user_id=ctx.user_id, limit=args.limit)
        if not notes:
            return "No notes saved yet."
        zone = ZoneInfo(ctx.timezone)
        return "\n".join(
            f"#{n.id} ({n.created_at.astimezone(zone):%Y-%m-%d %H:%M}): {n.text}" for n in notes
        )
