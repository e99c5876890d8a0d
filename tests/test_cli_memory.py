"""`dadang memory …` as scripts call it (real subprocesses, real SQLite, Chroma and model)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import dadang


def test_import_search_queries_show_export_and_forget(clean_environ: Path, tmp_path: Path) -> None:
    data = tmp_path / "memories.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "id": "m1",
                        "content": "我不喜欢早上开会",
                        "kind": "preference",
                        "created_at": "2026-10-01T09:00:00+08:00",
                    },
                    ensure_ascii=False,
                ),
                json.dumps(
                    {
                        "id": "m2",
                        "content": "Promised Wang the contract by Thursday",
                        "kind": "commitment",
                        "created_at": "2026-10-05T10:00:00+08:00",
                        "importance": 0.9,
                    }
                ),
                "{not json",
                json.dumps(
                    {
                        "id": "m3",
                        "content": "今天好累，心情很差",
                        "kind": "mood",
                        "created_at": "2026-10-14T20:00:00+08:00",
                    },
                    ensure_ascii=False,
                ),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    first = dadang("memory", "import", str(data), "--user", "alice")
    assert first.returncode == 1  # one bad line, reported, the rest imported
    assert f"{data}:3" in first.stderr
    assert "imported 3" in first.stdout
    again = dadang("memory", "import", str(data), "--user", "alice")
    assert "imported 0, skipped 3" in again.stdout

    found = dadang(
        "memory", "search", "帮我安排和王总的会", "--user", "alice", "--limit", "2", "--json"
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert "m1" in [h["id"] for h in hits]
    assert set(hits[0]) == {"id", "content", "kind", "created_at", "score"}

    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps(
            {"qid": "a", "query": "上周三我心情怎么样？", "asked_at": "2026-10-20T10:00:00+08:00"},
            ensure_ascii=False,
        )
        + "\n"
        + json.dumps({"qid": "b", "query": "what did I promise Wang?"})
        + "\n",
        encoding="utf-8",
    )
    batch = dadang("memory", "search", "--queries", str(queries), "--user", "alice", "--limit", "3")
    lines = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [line["qid"] for line in lines] == ["a", "b"]
    assert lines[0]["hits"][0]["id"] == "m3"
    assert lines[1]["hits"][0]["id"] == "m2"

    shown = json.loads(dadang("memory", "show", "m2", "--user", "alice").stdout)
    assert shown[0]["importance"] == 0.9

    assert dadang("memory", "forget", "m1", "--user", "alice").returncode == 0
    exported = [
        json.loads(line)
        for line in dadang("memory", "export", "--user", "alice").stdout.splitlines()
    ]
    assert {e["id"] for e in exported} == {"m2", "m3"}
    assert dadang("memory", "forget", "m1", "--user", "alice").returncode == 1
    assert dadang("memory", "search", "x", "--user", "nobody").returncode == 1
    assert "reindexed 2" in dadang("memory", "reindex").stdout
