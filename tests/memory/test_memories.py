"""Long-term memory on real parts: SQLite/PostgreSQL, embedded Chroma, the offline embedder."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.db import open_database
from memory.embeddings import LocalEmbedder
from memory.identities import IdentityStore
from memory.memories import NewMemory
from memory.service import MemoryService
from memory.vectors import VectorIndex


@pytest.fixture(scope="session")
def embedder() -> Iterator[LocalEmbedder]:
    """One model for the whole run (it takes about a second to load)."""
    model = LocalEmbedder()
    yield model
    model.close()


@pytest.fixture
async def memories(
    db_url: str, tmp_path: Path, embedder: LocalEmbedder
) -> AsyncIterator[MemoryService]:
    db = open_database(db_url)
    service = MemoryService(db, index=VectorIndex(path=tmp_path / "chroma"), embedder=embedder)
    await service.start()
    yield service
    if service.index is not None:
        service.index.close()
    await db.dispose()


async def _users(service: MemoryService) -> tuple[int, int]:
    identities = IdentityStore(service.store._db)
    ann = await identities.ensure_owner(name="Ann")
    bob = await identities.link(
        user_id=None, channel="telegram", external_id="77", display_name="Bob"
    )
    return ann.id, bob


async def test_a_preference_is_found_across_languages_and_wordings(memories: MemoryService) -> None:
    ann, _ = await _users(memories)
    await memories.remember(
        ann, NewMemory(content="我不喜欢早上开会，最好安排在下午", kind="preference")
    )
    await memories.remember(
        ann, NewMemory(content="I prefer window seats on flights", kind="preference")
    )
    await memories.remember(ann, NewMemory(content="王总是我的老板", kind="person"))
    hits = await memories.search(ann, "帮我安排和王总的会", limit=3)
    assert {h.memory.content for h in hits} >= {
        "我不喜欢早上开会，最好安排在下午",
        "王总是我的老板",
    }
    english = await memories.search(ann, "what are my meeting time preferences?", limit=2)
    assert english[0].memory.content == "我不喜欢早上开会，最好安排在下午"


async def test_chinese_keyword_recall_works_without_vectors(db_url: str) -> None:
    db = open_database(db_url)
    try:
        service = MemoryService(db, index=None, embedder=None)
        ann, _ = await _users(service)
        await service.remember(ann, NewMemory(content="周五前把季度报告发给李经理"))
        await service.remember(ann, NewMemory(content="女儿下个月过生日"))
        hits = await service.search(ann, "季度报告什么时候交？")
        assert [h.memory.content for h in hits][:1] == ["周五前把季度报告发给李经理"]
    finally:
        await db.dispose()


async def test_a_newer_fact_supersedes_the_old_one_which_stays_as_history(
    memories: MemoryService,
) -> None:
    ann, _ = await _users(memories)
    old = await memories.remember(ann, NewMemory(content="I live in Beijing", kind="fact"))
    new = await memories.supersede(
        ann, old.id, NewMemory(content="I moved to Shenzhen", kind="fact")
    )
    assert new is not None and new.supersedes_id == old.id
    hits = await memories.search(ann, "where do I live?")
    assert [h.memory.content for h in hits] == ["I moved to Shenzhen"]
    history = await memories.search(ann, "where do I live?", include_history=True)
    assert {h.memory.content for h in history} == {"I live in Beijing", "I moved to Shenzhen"}
    current = await memories.store.recent(ann)
    assert [m.content for m in current] == ["I moved to Shenzhen"]


async def test_forget_removes_from_database_and_vector_index(memories: MemoryService) -> None:
    ann, _ = await _users(memories)
    doomed = await memories.remember(ann, NewMemory(content="my bank PIN hint is the cat's name"))
    assert memories.index is not None
    assert doomed.id in (await memories.index.ids())[ann]
    assert await memories.forget(ann, doomed.id)
    assert await memories.store.get(ann, doomed.id) is None
    assert doomed.id not in (await memories.index.ids())[ann]
    assert await memories.search(ann, "bank PIN hint") == []
    assert not await memories.forget(ann, doomed.id)


async def test_one_user_never_recalls_another_users_memories(memories: MemoryService) -> None:
    ann, bob = await _users(memories)
    await memories.remember(bob, NewMemory(content="Bob's surprise party is on Saturday"))
    await memories.remember(ann, NewMemory(content="Ann likes jazz"))
    found = await memories.search(ann, "surprise party Saturday")
    assert all(h.memory.user_id == ann for h in found)
    assert memories.index is not None and memories.embedder is not None
    [vector] = await memories.embedder.embed_queries(["surprise party Saturday"])
    raw = await memories.index.query(ann, vector, k=10)
    bob_ids = {m.id for m in await memories.store.recent(bob)}
    assert not bob_ids & {i for i, _ in raw}
    assert not await memories.forget(ann, next(iter(bob_ids)))


async def test_index_is_rebuilt_after_its_folder_is_deleted(
    db_url: str, tmp_path: Path, embedder: LocalEmbedder
) -> None:
    db = open_database(db_url)
    try:
        first = MemoryService(db, index=VectorIndex(path=tmp_path / "c1"), embedder=embedder)
        await first.start()
        ann, _ = await _users(first)
        await first.import_many(
            ann,
            [
                NewMemory(content=f"note number {i} about gardening", external_id=f"n{i}")
                for i in range(30)
            ],
        )
        assert first.index is not None
        first.index.close()
        shutil.rmtree(tmp_path / "c1")
        second = MemoryService(db, index=VectorIndex(path=tmp_path / "c1"), embedder=embedder)
        await second.start()
        assert second.index is not None
        assert await second.index.count() == 30
        second.index.close()
    finally:
        await db.dispose()


async def test_import_is_idempotent_on_external_id(memories: MemoryService) -> None:
    ann, _ = await _users(memories)
    items = [NewMemory(content=f"fact {i}", external_id=f"e{i}") for i in range(5)]
    assert await memories.import_many(ann, items) == (5, 0)
    assert await memories.import_many(ann, items) == (0, 5)
    assert await memories.store.count(ann) == 5


async def test_temporal_question_finds_what_was_said_that_day(memories: MemoryService) -> None:
    ann, _ = await _users(memories)
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    await memories.remember(
        ann,
        NewMemory(content="今天好累，心情很差", kind="mood", valid_from=monday + timedelta(days=2)),
    )
    await memories.remember(
        ann, NewMemory(content="跑完步心情很好", kind="mood", valid_from=monday + timedelta(days=4))
    )
    hits = await memories.search(
        ann, "上周三我心情怎么样？", now=monday + timedelta(days=8), limit=1
    )
    assert hits[0].memory.content == "今天好累，心情很差"


async def test_a_huge_memory_text_is_cut_not_rejected(memories: MemoryService) -> None:
    ann, _ = await _users(memories)
    record = await memories.remember(ann, NewMemory(content="长" * 1_000_000))
    assert len(record.content) == 2000


async def test_remote_embeddings_endpoint_is_used_and_its_outage_is_repaired_later(
    db_url: str, tmp_path: Path
) -> None:
    from memory.embeddings import RemoteEmbedder
    from tests.fakes.vllm import FakeVLLM

    with FakeVLLM(model="qwen3-embedding") as server:
        db = open_database(db_url)
        embedder = RemoteEmbedder(base_url=server.url)
        service = MemoryService(db, index=VectorIndex(path=tmp_path / "vec"), embedder=embedder)
        try:
            await service.start()
            ann, _ = await _users(service)
            server.embeddings_status = 503
            kept = await service.remember(ann, NewMemory(content="book the dentist for Friday"))
            assert service.stale  # stored in the database, not yet in the index
            assert [h.memory.id for h in await service.search(ann, "dentist Friday")] == [kept.id]
            server.embeddings_status = None
            assert await service.repair() == 1
            assert service.stale is False
            assert service.index is not None
            assert kept.id in (await service.index.ids())[ann]
            assert server.embeddings_calls >= 2
        finally:
            await service.close()
            await db.dispose()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`, shipped with chromadb) on loopback."""
    import os
    import shutil as sh
    import socket
    import subprocess
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = sh.which("chroma") or str(Path(__import__("sys").executable).parent / "chroma")
    proc = subprocess.Popen(
        [
            binary,
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("chroma run did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_chroma_server_works_like_the_embedded_index(
    chroma_server: str, tmp_path: Path, embedder: LocalEmbedder
) -> None:
    db_url = f"sqlite:///{tmp_path / 'srv.db'}"
    from memory.migrate import upgrade

    upgrade(db_url)
    db = open_database(db_url)
    service = MemoryService(db, index=VectorIndex(url=chroma_server), embedder=embedder)
    try:
        await service.start()
        ann, bob = await _users(service)
        await service.remember(ann, NewMemory(content="我对花生过敏"))
        await service.remember(bob, NewMemory(content="Bob is allergic to shellfish"))
        hits = await service.search(ann, "我有什么食物过敏？")
        assert [h.memory.content for h in hits] == ["我对花生过敏"]
        assert service.recall.degraded is None
    finally:
        await service.close()
        await db.dispose()
