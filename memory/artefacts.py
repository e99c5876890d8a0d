"""Large audit artefacts (screenshots, downloaded files) stored once by their SHA-256.

An audit row carries only the hash (`detail["artefacts"]`); the bytes live under
`$DADANG_HOME/artefacts/ab/cdef…`. Content addressing makes the row's hash chain cover the file
too: `dadang audit verify` re-hashes every referenced artefact, so a swapped screenshot is as
visible as an edited row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from memory.errors import StorageError


class ArtefactError(StorageError):
    """An artefact is missing or its bytes no longer match its hash."""


class ArtefactStore:
    """Write-once files named by their content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArtefactError(f"{digest[:80]!r} is not a SHA-256 hex digest")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        """Store `data` (once) and return its SHA-256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename: a crash never leaves a truncated artefact.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`.

        Raises:
            ArtefactError: missing, or the bytes do not hash to `digest` any more.
        """
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtefactError(f"artefact {digest[:12]}… is missing") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtefactError(f"artefact {digest[:12]}… was changed")
        return data

    def discard(self, digest: str) -> None:
        """Remove the bytes under `digest` (the caller knows nothing refers to them any more)."""
        self._path(digest).unlink(missing_ok=True)

    def check(self, digest: str) -> str | None:
        """None when the artefact is intact, else what is wrong with it."""
        try:
            self.get(digest)
        except ArtefactError as exc:
            return str(exc)
        return None
