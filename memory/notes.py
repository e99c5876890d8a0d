"""Notes the user asked to keep, the first real tool-backed store (memory proper comes later)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from memory.db import Database
from memory.models import Note


@dataclass(frozen=True, kw_only=True)
class NoteEntry:
    """A stored note."""

    id: int
    text: str
    created_at: datetime


class NoteStore:
    """Per-user notes; every query is scoped to one user."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, *, user_id: int, text: str, source_message_id: int | None) -> NoteEntry:
        """Store a note once per (source message, text): a retried turn does not duplicate it."""
        key = hashlib.sha256(f"{source_message_id}\x00{text}".encode()).hexdigest()
        async with self._db.sessions() as session:
            row = Note(
                user_id=user_id, text=text, source_message_id=source_message_id, dedupe_key=key
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await session.scalar(
                    select(Note).where(Note.user_id == user_id, Note.dedupe_key == key)
                )
                assert found is not None
                row = found
        return NoteEntry(id=row.id, text=row.text, created_at=row.created_at)

    async def list(self, *, user_id: int, limit: int = 20) -> list[NoteEntry]:
        """The user's newest notes, newest first."""
        async with self._db.sessions() as session:
            rows = await session.scalars(
                select(Note).where(Note.user_id == user_id).order_by(Note.id.desc()).limit(limit)
            )
            return [NoteEntry(id=r.id, text=r.text, created_at=r.created_at) for r in rows]
