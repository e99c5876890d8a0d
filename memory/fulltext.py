"""Keyword search over memories: SQLite FTS5 (bm25) or PostgreSQL full text (ts_rank).

Both index `memories.search_text`, which holds pre-segmented tokens (see `memory.segment`), so
the same query terms work on either backend and for Chinese as well as English.
"""

from __future__ import annotations

from sqlalchemy import text

from memory.db import Database
from memory.segment import query_terms


async def fulltext_search(
    db: Database, user_id: int, query: str, *, limit: int = 50, include_history: bool = False
) -> list[tuple[int, float]]:
    """(memory id, score) of the user's memories matching any query term; higher is better."""
    terms = query_terms(query)
    if not terms:
        return []
    current = "" if include_history else "AND valid_to IS NULL "
    if db.is_sqlite:
        sql = (
            "SELECT m.id, -bm25(memory_fts) AS score FROM memory_fts "
            "JOIN memories m ON m.id = memory_fts.rowid "
            "WHERE memory_fts MATCH :match AND m.user_id = :user_id "
            + current.replace("valid_to", "m.valid_to")
            + "ORDER BY bm25(memory_fts) LIMIT :limit"
        )
        match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
        params: dict[str, object] = {"match": match, "user_id": user_id, "limit": limit}
    else:
        sql = (
            "SELECT id, ts_rank(to_tsvector('simple', search_text), q) AS score "
            "FROM memories, to_tsquery('simple', :tsquery) AS q "
            "WHERE user_id = :user_id AND to_tsvector('simple', search_text) @@ q "
            + current
            + "ORDER BY score DESC LIMIT :limit"
        )
        params = {"tsquery": " | ".join(terms), "user_id": user_id, "limit": limit}
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(sql), params)).all()
    return [(int(i), float(s)) for i, s in rows]
