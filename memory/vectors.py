"""The vector index of memories in Chroma: embedded under DADANG_HOME, or a Chroma server.

The database is the source of truth; this index is derived from it and can be rebuilt at any
time (`dadang memory reindex`, or automatically at start when it is missing or stale). Every
query is filtered by user id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from memory.embeddings import Vector
from memory.errors import StorageError
from memory.memories import MemoryRecord

T = TypeVar("T")
_PREFIX = "dadang_u"


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
    """Memory vectors, one Chroma collection per user.

    Per-user collections make isolation structural (a query cannot reach another user's
    vectors) and keep queries fast: a metadata filter over one shared collection cost 34 ms at
    10k vectors here, an unfiltered query on the user's own collection a few milliseconds.
    """

    def __init__(self, *, path: Path | None = None, url: str | None = None) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path (embedded Chroma) or url (Chroma server)")
        self._path, self._url = path, url
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma")
        self._client: Any = None
        self._collections: dict[int, Any] = {}
        self._embedder = ""
        self.where = str(path) if path else str(url)

    async def _call(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except VectorIndexError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean "index unusable now"
            raise VectorIndexError(f"the vector index at {self.where} failed: {exc}") from exc

    def _connect(self) -> Any:
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
        """Connect; True when the index is empty or was built by another model (it is then
        cleared, and the caller must rebuild it from the database)."""

        def go() -> bool:
            self._client = self._connect()
            self._embedder = embedder
            self._collections.clear()
            names = [c if isinstance(c, str) else c.name for c in self._client.list_collections()]
            ours = [n for n in names if n.startswith(_PREFIX)]
            stale = False
            for name in ours:
                collection = self._client.get_collection(name, embedding_function=_guard_class())
                if (collection.metadata or {}).get("embedder") != embedder:
                    stale = True
                    break
            if stale:
                for name in ours:
                    self._client.delete_collection(name)
                return True
            return not ours

        return await self._call(go)

    @property
    def is_open(self) -> bool:
        """True once `open` succeeded."""
        return self._client is not None

    def _collection(self, user_id: int, *, create: bool) -> Any:
        """The user's collection (runs on the Chroma thread)."""
        if user_id in self._collections:
            return self._collections[user_id]
        if self._client is None:
            raise VectorIndexError("the vector index is not open")
        name = f"{_PREFIX}{user_id}"
        if create:
            collection = self._client.get_or_create_collection(
                name,
                embedding_function=_guard_class(),
                metadata={"embedder": self._embedder, "hnsw:space": "cosine"},
            )
        else:
            try:
                collection = self._client.get_collection(name, embedding_function=_guard_class())
            except Exception:  # Chroma raises NotFound variants by version
                return None
        self._collections[user_id] = collection
        return collection

    async def upsert(self, items: Sequence[tuple[MemoryRecord, Vector]]) -> None:
        """Add or replace vectors (grouped into each user's collection)."""
        if not items:
            return
        by_user: dict[int, list[tuple[MemoryRecord, Vector]]] = {}
        for memory, vector in items:
            by_user.setdefault(memory.user_id, []).append((memory, vector))

        def go() -> None:
            for user_id, group in by_user.items():
                self._collection(user_id, create=True).upsert(
                    ids=[str(m.id) for m, _ in group],
                    embeddings=[v for _, v in group],
                    metadatas=[{"kind": m.kind} for m, _ in group],
                )

        await self._call(go)

    async def delete(self, user_id: int, ids: Sequence[int]) -> None:
        """Remove vectors (forgotten memories)."""
        if not ids:
            return

        def go() -> None:
            collection = self._collection(user_id, create=False)
            if collection is not None:
                collection.delete(ids=[str(i) for i in ids])

        await self._call(go)

    async def query(self, user_id: int, vector: Vector, *, k: int) -> list[tuple[int, float]]:
        """(memory id, cosine similarity) of the user's nearest memories, best first."""

        def go() -> list[tuple[int, float]]:
            collection = self._collection(user_id, create=False)
            if collection is None:
                return []
            result = collection.query(query_embeddings=[vector], n_results=k, include=["distances"])
            ids = result["ids"][0] if result["ids"] else []
            distances = result["distances"][0] if result.get("distances") else []
            return [(int(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=False)]

        return await self._call(go)

    async def ids(self) -> dict[int, set[int]]:
        """Every id in the index, per user (to diff against the database)."""

        def go() -> dict[int, set[int]]:
            if self._client is None:
                raise VectorIndexError("the vector index is not open")
            found: dict[int, set[int]] = {}
            for c in self._client.list_collections():
                name = c if isinstance(c, str) else c.name
                if not name.startswith(_PREFIX):
                    continue
                user_id = int(name[len(_PREFIX) :])
                collection = self._collection(user_id, create=False)
                ids: set[int] = set()
                offset = 0
                while True:
                    page = collection.get(include=[], limit=5000, offset=offset)
                    if not page["ids"]:
                        break
                    ids.update(int(i) for i in page["ids"])
                    offset += len(page["ids"])
                found[user_id] = ids
            return found

        return await self._call(go)

    async def count(self) -> int:
        """Number of vectors."""
        return sum(len(v) for v in (await self.ids()).values())

    def close(self) -> None:
        """Release Chroma (its shared system is stopped with the last client) and the thread."""
        client, self._client = self._client, None
        self._collections.clear()
        if client is not None and hasattr(client, "close"):

            def release() -> None:
                with contextlib.suppress(Exception):
                    client.close()
                # The HTTP client's httpx sessions (its own and its admin client's) stay open
                # after close(); close them too.
                for owner in (client, getattr(client, "_admin_client", None)):
                    session = getattr(getattr(owner, "_server", None), "_session", None)
                    if session is not None:
                        with contextlib.suppress(Exception):
                            session.close()

            self._pool.submit(release).result(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
