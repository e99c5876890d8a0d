"""Content-addressed artefacts: stored once, read back verified, tampering detected."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from memory.artefacts import ArtefactError, ArtefactStore


def test_put_is_idempotent_and_get_verifies(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path / "artefacts")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    digest = store.put(png)
    assert digest == hashlib.sha256(png).hexdigest()
    assert store.put(png) == digest
    path = tmp_path / "artefacts" / digest[:2] / digest[2:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get(digest) == png and store.check(digest) is None
    assert list(path.parent.glob(".tmp-*")) == []


def test_a_changed_or_missing_artefact_is_reported(tmp_path: Path) -> None:
    store = ArtefactStore(tmp_path)
    digest = store.put(b"screenshot")
    (tmp_path / digest[:2] / digest[2:]).write_bytes(b"another screenshot")
    assert "was changed" in (store.check(digest) or "")
    (tmp_path / digest[:2] / digest[2:]).unlink()
    assert "is missing" in (store.check(digest) or "")
    with pytest.raises(ArtefactError, match="not a SHA-256"):
        store.get("../../etc/passwd")
