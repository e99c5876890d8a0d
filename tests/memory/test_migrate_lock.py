"""Replicas starting together on an empty PostgreSQL database migrate once, not into each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from memory.migrate import current_revision, head_revision, upgrade


def test_concurrent_upgrades_of_an_empty_database_all_succeed(pg_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: upgrade(pg_url), range(4)))
    assert results == [None] * 4
    assert current_revision(pg_url) == head_revision()
    upgrade(pg_url)  # and again, with nothing left to do
    assert current_revision(pg_url) == head_revision()
