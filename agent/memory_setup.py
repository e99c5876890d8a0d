"""Building the memory service from settings (embedded or server Chroma, local or remote model)."""

from __future__ import annotations

from agent.settings import Settings
from memory.db import Database
from memory.embeddings import Embedder, LocalEmbedder, RemoteEmbedder
from memory.service import MemoryService
from memory.vectors import VectorIndex


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder: remote when DADANG_EMBEDDINGS_BASE_URL is set, else offline."""
    if settings.embeddings_base_url:
        key = settings.embeddings_api_key
        return RemoteEmbedder(
            base_url=settings.embeddings_base_url,
            model=settings.embeddings_model,
            api_key=key.get_secret_value() if key else None,
        )
    return LocalEmbedder()


def build_memory(settings: Settings, db: Database) -> MemoryService:
    """Memory service with its vector index and embedder (nothing is opened yet)."""
    index = (
        VectorIndex(url=settings.chroma_url)
        if settings.chroma_url
        else VectorIndex(path=settings.home / "chroma")
    )
    return MemoryService(db, index=index, embedder=build_embedder(settings))
