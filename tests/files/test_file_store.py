"""FileStore on SQLite and PostgreSQL: per-user isolation, idempotent adds, limits, deletion."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memory.artefacts import ArtefactError
from memory.conversations import ConversationStore
from memory.db import Database, open_database
from memory.file_models import FileOrigin
from memory.files import MB, FileNotFound, FileStore, FileTooLarge, QuotaExceeded, sanitise_name
from memory.identities import IdentityStore


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = open_database(db_url)
    yield database
    await database.dispose()


async def two_users(db: Database) -> tuple[int, int]:
    identities = IdentityStore(db)
    ann = (await identities.ensure_owner(name="Ann")).id
    bob = await identities.link(user_id=None, channel="telegram", external_id="2", display_name="B")
    return ann, bob


async def a_message(db: Database, user_id: int, key: str = "7:1") -> int:
    record = await ConversationStore(db).record_inbound(
        user_id=user_id, channel="telegram", chat_id="7", text="file", channel_message_id=key
    )
    assert record is not None
    return record.message_id


async def test_a_file_is_stored_read_back_listed_and_only_its_owner_sees_it(
    db: Database, tmp_path: Path
) -> None:
    ann, bob = await two_users(db)
    store = FileStore(db, tmp_path / "files")
    data = "季度反馈,分数\nA,5\n".encode()
    first = await store.add(ann, "feedback.csv", data, mime="text/csv", origin=FileOrigin.CHAT)
    second = await store.add(ann, "notes.txt", b"hi", mime="", origin="generated")

    assert (first.name, first.mime, first.size, first.origin) == (
        "feedback.csv",
        "text/csv",
        len(data),
        "chat",
    )
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert second.mime == "application/octet-stream"
    assert await store.read(ann, first.id) == data
    assert [r.id for r in await store.list(ann, 10)] == [second.id, first.id]
    assert await store.get(ann, first.id) == first
    # Bob's view: Ann's file does not exist.
    assert await store.get(bob, first.id) is None
    assert await store.list(bob, 10) == []
    with pytest.raises(FileNotFound, match=f"no file #{first.id}"):
        await store.read(bob, first.id)
    assert await store.delete(bob, first.id) is False
    assert await store.read(ann, first.id) == data
    blob = tmp_path / "files" / str(ann) / first.sha256[:2] / first.sha256[2:]
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "files" / str(ann)).stat().st_mode) == 0o700


async def test_the_same_message_storing_the_same_name_again_gets_the_first_file(
    db: Database, tmp_path: Path
) -> None:
    ann, _ = await two_users(db)
    message = await a_message(db, ann)
    store = FileStore(db, tmp_path)
    first = await store.add(
        ann,
        "report.pdf",
        b"%PDF-1",
        mime="application/pdf",
        origin="chat",
        source_message_id=message,
    )
    replay = await store.add(
        ann,
        "report.pdf",
        b"%PDF-1",
        mime="application/pdf",
        origin="chat",
        source_message_id=message,
    )
    assert replay == first
    assert len(await store.list(ann)) == 1
    assert await store.usage(ann) == 6
    assert await store.find(ann, source_message_id=message, name="report.pdf") == first
    # Without a source message every add is a new file.
    await store.add(ann, "report.pdf", b"%PDF-1", mime="application/pdf", origin="generated")
    await store.add(ann, "report.pdf", b"%PDF-1", mime="application/pdf", origin="generated")
    assert len(await store.list(ann)) == 3


async def test_a_rerun_call_finds_its_file_and_another_call_gets_a_new_version(
    db: Database, tmp_path: Path
) -> None:
    ann, _ = await two_users(db)
    message = await a_message(db, ann)
    store = FileStore(db, tmp_path)

    async def write(data: bytes, call: str) -> tuple[int, str]:
        made = await store.add(
            ann,
            "行动项.xlsx",
            data,
            mime="application/vnd.ms-excel",
            origin="generated",
            source_message_id=message,
            call_id=call,
        )
        return made.id, made.name

    first = await write(b"v1", "call-1")
    assert first[1] == "行动项.xlsx"
    # The same call again (a turn re-run after a crash; an xlsx differs in its timestamps).
    assert await write(b"v1 again", "call-1") == first
    # The model corrects the table in a later call of the same request: a new version.
    second = await write(b"v2", "call-2")
    assert second[1] == "行动项 (2).xlsx" and second[0] != first[0]
    assert await write(b"v2", "call-2") == second
    third = await write(b"v3", "call-3")
    assert third[1] == "行动项 (3).xlsx"
    assert await store.read(ann, second[0]) == b"v2"


async def test_oversized_files_and_a_full_quota_are_refused_with_what_to_do(
    db: Database, tmp_path: Path
) -> None:
    ann, bob = await two_users(db)
    store = FileStore(db, tmp_path, quota_bytes=3 * MB, max_file_bytes=2 * MB)
    with pytest.raises(FileTooLarge, match=r"big\.bin is 2\.0 MB; one file may be at most 2\.0 MB"):
        await store.add(ann, "big.bin", b"x" * (2 * MB + 1), mime="", origin="chat")
    await store.add(ann, "a.bin", b"x" * (2 * MB), mime="", origin="chat")
    with pytest.raises(QuotaExceeded, match="your files use 2.0 MB of 3.0 MB.*DADANG_FILES_MAX_MB"):
        await store.add(ann, "b.bin", b"x" * (MB + 1), mime="", origin="chat")
    assert await store.room(ann) == MB
    await store.add(ann, "c.bin", b"x" * MB, mime="", origin="chat")
    with pytest.raises(
        QuotaExceeded, match=r"^d\.bin does not fit: your files use 3\.0 MB of 3\.0"
    ):
        await store.check_room(ann, None, name="d.bin")  # a file of unknown size
    assert await store.room(bob) == 2 * MB  # quotas are per user
    await store.add(bob, "b.bin", b"y" * (2 * MB), mime="", origin="chat")
    assert [r.name for r in await store.list(ann)] == ["c.bin", "a.bin"]


async def test_deleting_removes_the_bytes_once_no_other_file_of_the_user_has_them(
    db: Database, tmp_path: Path
) -> None:
    ann, bob = await two_users(db)
    store = FileStore(db, tmp_path)
    one = await store.add(ann, "one.txt", b"same", mime="text/plain", origin="chat")
    two = await store.add(ann, "two.txt", b"same", mime="text/plain", origin="chat")
    bobs = await store.add(bob, "bob.txt", b"same", mime="text/plain", origin="chat")
    ann_blob = tmp_path / str(ann) / one.sha256[:2] / one.sha256[2:]

    assert await store.delete(ann, one.id) is True
    assert ann_blob.exists() and await store.read(ann, two.id) == b"same"
    assert await store.delete(ann, two.id) is True
    assert not ann_blob.exists()
    assert await store.get(ann, two.id) is None
    assert await store.read(bob, bobs.id) == b"same"  # Bob's copy is his own
    assert await store.delete(ann, two.id) is False


async def test_bytes_changed_on_disk_are_not_served(db: Database, tmp_path: Path) -> None:
    ann, _ = await two_users(db)
    store = FileStore(db, tmp_path)
    record = await store.add(ann, "contract.pdf", b"signed", mime="application/pdf", origin="chat")
    (tmp_path / str(ann) / record.sha256[:2] / record.sha256[2:]).write_bytes(b"forged")
    with pytest.raises(ArtefactError, match="was changed"):
        await store.read(ann, record.id)
    with pytest.raises(ArtefactError, match="was changed"):
        await store.for_delivery(record.id)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\报告 2024.xlsx", "报告 2024.xlsx"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ('a<b>:c"d|e?.txt', "a_b__c_d_e_.txt"),
        ("  ..  ", "file"),
        ("line\nbreak.txt", "line_break.txt"),
        ("x" * 300 + ".xlsx", "x" * 115 + ".xlsx"),
    ],
)
def test_names_are_sanitised_for_display_and_disk(given: str, stored: str) -> None:
    assert sanitise_name(given) == stored
