"""The vector index of memories in Chroma: embedded under DADANG_HOME, or a Chroma server.

The database is the source of truth; this index is derived from it and can be rebuilt at any
time (`dadang memory reindex`, or automatically at start when it is missing or stale). Every
query is filtered by user id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from memory.embeddings import Vector
from memory.errors import StorageError
from memory.memories import MemoryRecord

T = TypeVar("T")
_COLLECTION = "dadang_memories"


class VectorIndexError(StorageError):
    """Chroma failed; recall falls back to keyword search and the index is repaired later."""


def _guard_class() -> Any:
    """An embedding function that refuses to embed.

    Chroma silently falls back to its default ONNX model (downloaded at first use) when a call
    comes without explicit embeddings; this guard turns that into an error instead.
    """
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class NoEmbedding(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            return None

        def __call__(self, input: Documents) -> Embeddings:
            raise RuntimeError("Dadang passes embeddings explicitly")

        @staticmethod
        def name() -> str:
            return "dadang-none"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> NoEmbedding:
            return NoEmbedding()

    return NoEmbedding()


class VectorIndex:
    """Memory vectors with `user_id`, `kind` and `current` metadata."""

    def __init__(self, *, path: Path | None = None, url: str | None = None) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path (embedded Chroma) or url (Chroma server)")
        self._path, self._url = path, url
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma")
        self._collection: Any = None
        self.where = str(path) if path else str(url)

    async def _call(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except VectorIndexError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean "index unusable now"
            raise VectorIndexError(f"the vector index at {self.where} failed: {exc}") from exc

    def _client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self._path is not None:
            self._path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(self._path), settings=settings)
        parsed = urlparse(str(self._url))
        return chromadb.HttpClient(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=settings,
        )

    async def open(self, *, embedder: str) -> bool:
        """Connect and select the collection; True when it is new or was built by another model
        (the caller must then rebuild it from the database)."""

        def go() -> bool:
            client = self._client()
            collection = client.get_or_create_collection(
                _COLLECTION,
                embedding_function=_guard_class(),
                metadata={"embedder": embedder, "hnsw:space": "cosine"},
            )
            if (collection.metadata or {}).get("embedder") != embedder:
                client.delete_collection(_COLLECTION)
                collection = client.create_collection(
                    _COLLECTION,
                    embedding_function=_guard_class(),
                    metadata={"embedder": embedder, "hnsw:space": "cosine"},
                )
                self._collection = collection
                return True
            self._collection = collection
            return bool(collection.count() == 0)

        return await self._call(go)

    @property
    def is_open(self) -> bool:
        """True once `open` succeeded."""
        return self._collection is not None

    def _require(self) -> Any:
        if self._collection is None:
            raise VectorIndexError("the vector index is not open")
        return self._collection

    async def upsert(self, items: Sequence[tuple[MemoryRecord, Vector]]) -> None:
        """Add or replace vectors."""
        if not items:
            return
        collection = self._require()

        def go() -> None:
            collection.upsert(
                ids=[str(m.id) for m, _ in items],
                embeddings=[v for _, v in items],
                metadatas=[
                    {"user_id": m.user_id, "kind": m.kind, "current": m.valid_to is None}
                    for m, _ in items
                ],
            )

        await self._call(go)

    async def set_current(self, memory_id: int, current: bool) -> None:
        """Mark a memory superseded (or current again) without re-embedding it."""
        collection = self._require()
        await self._call(
            lambda: collection.update(ids=[str(memory_id)], metadatas=[{"current": current}])
        )

    async def delete(self, ids: Sequence[int]) -> None:
        """Remove vectors (forgotten memories)."""
        if not ids:
            return
        collection = self._require()
        await self._call(lambda: collection.delete(ids=[str(i) for i in ids]))

    async def query(
        self, user_id: int, vector: Vector, *, k: int, current_only: bool = True
    ) -> list[tuple[int, float]]:
        """(memory id, cosine similarity) of the user's nearest memories, best first."""
        collection = self._require()
        where: dict[str, Any] = {"user_id": user_id}
        if current_only:
            where = {"$and": [{"user_id": user_id}, {"current": True}]}

        def go() -> list[tuple[int, float]]:
            result = collection.query(
                query_embeddings=[vector], n_results=k, where=where, include=["distances"]
            )
            ids = result["ids"][0] if result["ids"] else []
            distances = result["distances"][0] if result.get("distances") else []
            return [(int(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=False)]

        return await self._call(go)

    async def ids(self) -> set[int]:
        """Every id in the index (to diff against the database)."""
        collection = self._require()

        def go() -> set[int]:
            found: set[int] = set()
            offset = 0
            while True:
                page = collection.get(include=[], limit=5000, offset=offset)
                if not page["ids"]:
                    return found
                found.update(int(i) for i in page["ids"])
                offset += len(page["ids"])

        return await self._call(go)

    async def count(self) -> int:
        """Number of vectors."""
        collection = self._require()
        return int(await self._call(collection.count))

    def close(self) -> None:
        """Stop the worker thread."""
        self._pool.shutdown(wait=False, cancel_futures=True)
