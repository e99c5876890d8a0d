"""Users' files: a row in `files` per file, the bytes in a content-addressed store per user.

Why one byte store per user (`$DADANG_HOME/files/<user id>/ab/cdef…`) rather than one shared
store: a deleted file's bytes can be removed as soon as no row *of that user* names them, without
racing another user who stored the same bytes, and no query mistake can hand one user's bytes to
another through a shared digest. Every method but `for_delivery` takes the acting user and never
sees anybody else's rows: another user's file id behaves exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import re
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from memory.artefacts import ArtefactStore
from memory.db import Database
from memory.errors import StorageError
from memory.file_models import FileOrigin, StoredFile
from memory.types import utcnow

MB: Final = 1024 * 1024
MAX_FILE_BYTES: Final = 50 * MB
"""Largest single file (Telegram bots may upload up to 50 MB, so anything stored can be sent)."""
DEFAULT_QUOTA_BYTES: Final = 500 * MB
_NAME_CHARS: Final = 120
_UNSAFE: Final = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


class FileRejected(StorageError):
    """A file cannot be stored; the message says why and what the user can do."""


class FileTooLarge(FileRejected):
    """One file is over the per-file limit."""


class QuotaExceeded(FileRejected):
    """Storing the file would take the user over their quota."""


class FileNotFound(StorageError):
    """No such file among the acting user's files."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileRecord:
    """A stored file's metadata (read the bytes with `FileStore.read`)."""

    id: int
    user_id: int
    name: str
    mime: str
    size: int
    sha256: str
    origin: str
    source_message_id: int | None
    created_at: datetime


def format_size(size: int) -> str:
    """`812 bytes`, `34 KB`, `2.5 MB`: how sizes are shown to users and the model."""
    if size < 1024:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    if size < MB:
        return f"{round(size / 1024)} KB"
    return f"{size / MB:.1f} MB"


def sanitise_name(name: str) -> str:
    """A display name safe to show and to write as a file name: no folders, no control or
    direction-changing characters (`invoice\u202egpj.exe`), at most 120 characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) != "Cf")
    name = " ".join(_UNSAFE.sub("_", name).split()).strip(" .")
    if len(name) > _NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            name = stem[: _NAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:_NAME_CHARS].rstrip(" .")
    return name or "file"


class FileStore:
    """Adds, finds, reads and deletes files, always within one user's files."""

    def __init__(
        self,
        db: Database,
        root: Path,
        *,
        quota_bytes: int = DEFAULT_QUOTA_BYTES,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._db = db
        self.root = root
        self.quota_bytes = quota_bytes
        self.max_file_bytes = max_file_bytes

    def _blobs(self, user_id: int) -> ArtefactStore:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = self.root / str(user_id)
        folder.mkdir(mode=0o700, exist_ok=True)
        return ArtefactStore(folder)

    async def add(
        self,
        user_id: int,
        name: str,
        data: bytes,
        *,
        mime: str,
        origin: FileOrigin | str,
        source_message_id: int | None = None,
        call_id: str | None = None,
    ) -> FileRecord:
        """Store `data` as `name` for the user; idempotent per (source message, name), or per
        (source message, tool call) when `call_id` is given.

        Without `call_id`, a second call for the same source message and name returns the first
        file (a re-run turn finds what it stored), even if `data` differs. With it, a re-run of
        the same call finds its file, and another call of the same request that writes the same
        name (a corrected table) stores a new version, `name (2).xlsx`.

        Raises:
            FileTooLarge: over the per-file limit.
            QuotaExceeded: the user's files would exceed their quota.
        """
        name = sanitise_name(name)
        if source_message_id is not None and call_id is not None:
            made = await self._one(
                StoredFile.user_id == user_id,
                StoredFile.source_message_id == source_message_id,
                StoredFile.call_id == call_id,
            )
            if made is not None:
                return made
            name = await self._free_name(user_id, source_message_id, name)
        elif source_message_id is not None:
            found = await self.find(user_id, source_message_id=source_message_id, name=name)
            if found is not None:
                return found
        await self.check_room(user_id, len(data), name=name)
        # Bytes first, row second: a crash in between leaves unreferenced bytes, never a row
        # without its bytes.
        digest = await asyncio.to_thread(lambda: self._blobs(user_id).put(data))
        record = FileRecord(
            id=0,
            user_id=user_id,
            name=name,
            mime=(mime or "").strip().lower()[:127] or "application/octet-stream",
            size=len(data),
            sha256=digest,
            origin=str(FileOrigin(origin)),
            source_message_id=source_message_id,
            created_at=utcnow(),
        )
        values = {k: v for k, v in dataclasses.asdict(record).items() if k != "id"}
        values["call_id"] = call_id
        try:
            async with self._db.engine.begin() as conn:
                file_id = (
                    await conn.execute(insert(StoredFile).values(values).returning(StoredFile.id))
                ).scalar_one()
        except IntegrityError:
            # The same message stored the same name concurrently: that row is the answer.
            if source_message_id is not None:
                found = await self.find(user_id, source_message_id=source_message_id, name=name)
                if found is not None:
                    return found
            raise
        return dataclasses.replace(record, id=file_id)

    async def check_room(self, user_id: int, size: int | None, *, name: str = "the file") -> None:
        """Raise unless a file of `size` bytes (None: of unknown size) may be stored now.

        Raises:
            FileTooLarge: over the per-file limit.
            QuotaExceeded: the user's files would exceed their quota.
        """
        if size is not None and size > self.max_file_bytes:
            raise FileTooLarge(
                f"{name} is {format_size(size)}; one file may be at most "
                f"{format_size(self.max_file_bytes)}"
            )
        used = await self.usage(user_id)
        if used + (size or 0) > self.quota_bytes or used >= self.quota_bytes:
            what = name if size is None else f"{name} ({format_size(size)})"
            raise QuotaExceeded(
                f"{what} does not fit: your files use {format_size(used)} "
                f"of {format_size(self.quota_bytes)}. Delete files you no longer need, or ask the "
                "owner to raise DADANG_FILES_MAX_MB"
            )

    async def room(self, user_id: int) -> int:
        """The largest file the user may store next, in bytes."""
        return max(0, min(self.max_file_bytes, self.quota_bytes - await self.usage(user_id)))

    async def usage(self, user_id: int) -> int:
        """Bytes of the user's files (what the quota counts)."""
        query = select(func.coalesce(func.sum(StoredFile.size), 0)).where(
            StoredFile.user_id == user_id
        )
        async with self._db.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def _free_name(self, user_id: int, source_message_id: int, name: str) -> str:
        """`name`, or `stem (2).ext`, `stem (3).ext`, … if the request already used it."""
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        candidate, version = name, 1
        while await self.find(user_id, source_message_id=source_message_id, name=candidate):
            version += 1
            candidate = f"{stem} ({version}){'.' + ext if ext else ''}"
        return candidate

    async def find(self, user_id: int, *, source_message_id: int, name: str) -> FileRecord | None:
        """The file a message stored under `name`, if it did (checked before downloading again)."""
        return await self._one(
            StoredFile.user_id == user_id,
            StoredFile.source_message_id == source_message_id,
            StoredFile.name == sanitise_name(name),
        )

    async def get(self, user_id: int, file_id: int) -> FileRecord | None:
        """The user's file `file_id`; None if it does not exist or is somebody else's."""
        return await self._one(StoredFile.user_id == user_id, StoredFile.id == file_id)

    async def read(self, user_id: int, file_id: int) -> bytes:
        """The bytes of the user's file, verified against their hash.

        Raises:
            FileNotFound: no such file among the user's files.
            ArtefactError: the bytes are missing or were changed on disk.
        """
        record = await self.get(user_id, file_id)
        if record is None:
            raise FileNotFound(f"there is no file #{file_id} among your files")
        return await asyncio.to_thread(lambda: self._blobs(user_id).get(record.sha256))

    async def list(self, user_id: int, limit: int = 50) -> builtins.list[FileRecord]:
        """The user's files, newest first."""
        query = (
            select(StoredFile)
            .where(StoredFile.user_id == user_id)
            .order_by(StoredFile.id.desc())
            .limit(limit)
        )
        async with self._db.sessions() as session:
            return [_record(row) for row in (await session.scalars(query)).all()]

    async def delete(self, user_id: int, file_id: int) -> bool:
        """Delete the user's file (and its bytes once no other file of theirs has them).

        Returns False when there was no such file among the user's files.
        """
        mine = (StoredFile.user_id == user_id, StoredFile.id == file_id)
        async with self._db.engine.begin() as conn:
            digest = await conn.scalar(select(StoredFile.sha256).where(*mine))
            if digest is None:
                return False
            await conn.execute(delete(StoredFile).where(*mine))
            others = await conn.scalar(
                select(func.count(StoredFile.id)).where(
                    StoredFile.user_id == user_id, StoredFile.sha256 == digest
                )
            )
        if not others:
            await asyncio.to_thread(lambda: self._blobs(user_id).discard(digest))
        return True

    async def for_delivery(self, file_id: int) -> tuple[FileRecord, bytes] | None:
        """A file and its bytes by id alone, for the outbox sender.

        Only for rows whose writer checked ownership (`FileService.send`); None when deleted.

        Raises:
            ArtefactError: the bytes are missing or were changed on disk.
        """
        record = await self._one(StoredFile.id == file_id)
        if record is None:
            return None
        data = await asyncio.to_thread(lambda: self._blobs(record.user_id).get(record.sha256))
        return record, data

    async def _one(self, *where: ColumnElement[bool]) -> FileRecord | None:
        async with self._db.sessions() as session:
            row = await session.scalar(select(StoredFile).where(*where))
        return _record(row) if row is not None else None


def _record(row: StoredFile) -> FileRecord:
    return FileRecord(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        mime=row.mime,
        size=row.size,
        sha256=row.sha256,
        origin=row.origin,
        source_message_id=row.source_message_id,
        created_at=row.created_at,
    )
