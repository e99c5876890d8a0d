"""Evidence recall of Dadang's memory on a hand-written zh/en multi-session dataset.

Each conversation's user messages are imported as memories of their own user (ids kept, as
`dadang memory import` does), then every question is searched as `dadang memory search
--queries` does (same code, in process), with `asked_at` as "now" so "上周三" and "last week"
resolve as they would have. recall@K = share of a question's evidence messages in the top K,
averaged over questions. No model is needed.

    python -m bench.memory_eval [--data bench/data/memory_eval] [--misses 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.machine import describe
from memory.db import open_database
from memory.embeddings import LocalEmbedder
from memory.identities import IdentityStore
from memory.memories import NewMemory
from memory.migrate import upgrade
from memory.service import MemoryService
from memory.vectors import VectorIndex

DATA = Path(__file__).parent / "data" / "memory_eval"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def run(data: Path, misses: int, with_context: bool, keywords_only: bool) -> None:
    messages = load(data / "conversations.jsonl")
    questions = load(data / "questions.jsonl")
    home = Path(tempfile.mkdtemp(prefix="dadang-eval-"))
    url = f"sqlite:///{home / 'eval.db'}"
    upgrade(url)
    db = open_database(url)
    embedder = LocalEmbedder()
    service = (
        MemoryService(db, index=None, embedder=None)
        if keywords_only
        else MemoryService(db, index=VectorIndex(path=home / "chroma"), embedder=embedder)
    )
    await service.start()
    identities = IdentityStore(db)
    users: dict[str, int] = {}
    started = time.perf_counter()
    by_conv: dict[str, list[NewMemory]] = defaultdict(list)
    previous: dict[str, str] = {}
    for m in messages:
        if m["role"] != "user":
            previous[m["conv"]] = m["content"]
            continue
        # A short reply ("不要，太早了") means nothing without the proposal it answers; the
        # runtime gives extraction the same context, so the eval does too.
        context = previous.pop(m["conv"], "") if with_context else ""
        content = f"{m['content']} (re: {context[:160]})" if context else m["content"]
        by_conv[m["conv"]].append(
            NewMemory(
                content=content,
                external_id=m["id"],
                valid_from=datetime.fromisoformat(m["created_at"]),
                confidence=1.0,
            )
        )
    for conv, items in by_conv.items():
        users[conv] = await identities.create_user(f"eval-{conv}")
        await service.import_many(users[conv], items)
    ingest = time.perf_counter() - started

    at5: dict[str, list[float]] = defaultdict(list)
    at10: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    missed: list[str] = []
    for q in questions:
        t0 = time.perf_counter()
        hits = await service.search(
            users[q["conv"]], q["question"], limit=10, now=datetime.fromisoformat(q["asked_at"])
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        ids = [h.memory.external_id for h in hits]
        evidence = set(q["evidence"])
        r5 = len(evidence & set(ids[:5])) / len(evidence)
        r10 = len(evidence & set(ids[:10])) / len(evidence)
        for key in ("all", q["lang"], f"kind:{q['kind']}"):
            at5[key].append(r5)
            at10[key].append(r10)
        if r10 < 1 and len(missed) < misses:
            missed.append(f"{q['qid']} [{q['lang']}/{q['kind']}] {q['question']} → {ids[:5]}")
    judged: list[bool] = []
    if os.environ.get("DADANG_LLM_BASE_URL"):
        judged = await judge(service, users, questions)
    await service.close()
    await db.dispose()

    if judged:
        print(
            f"LLM-judged answer accuracy: {sum(judged) / len(judged):.3f} ({len(judged)} questions)\n"
        )
    print("| slice | questions | recall@5 | recall@10 |")
    print("| --- | --- | --- | --- |")
    order = ["all", "zh", "en", *sorted(k for k in at10 if k.startswith("kind:"))]
    for key in order:
        print(
            f"| {key} | {len(at10[key])} | {statistics.fmean(at5[key]):.3f} | "
            f"{statistics.fmean(at10[key]):.3f} |"
        )
    lat = sorted(latencies)
    print(
        f"\n{sum(len(v) for v in by_conv.values())} memories in {len(by_conv)} users, ingested in "
        f"{ingest:.1f} s; search p50 {lat[len(lat) // 2]:.1f} ms, "
        f"p95 {lat[int(len(lat) * 0.95)]:.1f} ms"
    )
    if missed:
        print("\nfirst misses (recall@10 < 1):")
        for line in missed:
            print("  " + line)
    print(f"\nmachine: {describe()}")


ANSWER = """Answer the user's question from these memories of what they told you before \
(dated; newer wins). Be brief.

Memories:
{memories}

Question ({asked_at}): {question}"""

JUDGE = """Reference answer: {reference}
Candidate answer: {candidate}
Does the candidate contain the information of the reference answer? Reply YES or NO only."""


async def judge(
    service: MemoryService, users: dict[str, int], questions: list[dict[str, Any]]
) -> list[bool]:
    """Answer each question from recalled memories with the configured model, then have the same
    model judge the answer against the reference (an estimate: a model grading itself)."""
    from agent.llm import LLMClient, ModelError

    llm = LLMClient(
        base_url=os.environ["DADANG_LLM_BASE_URL"],
        model=os.environ.get("DADANG_LLM_MODEL"),
        api_key=os.environ.get("DADANG_LLM_API_KEY"),
    )
    verdicts: list[bool] = []
    try:
        for q in questions:
            now = datetime.fromisoformat(q["asked_at"])
            hits = await service.search(users[q["conv"]], q["question"], limit=10, now=now)
            memories = "\n".join(
                f"- [{h.memory.valid_from:%Y-%m-%d}] {h.memory.content}" for h in hits
            )
            try:
                answer = await llm.chat(
                    [
                        {
                            "role": "user",
                            "content": ANSWER.format(
                                memories=memories,
                                asked_at=q["asked_at"][:10],
                                question=q["question"],
                            ),
                        }
                    ],
                    thinking=False,
                    stream=False,
                    max_tokens=300,
                    temperature=0.0,
                )
                verdict = await llm.chat(
                    [
                        {
                            "role": "user",
                            "content": JUDGE.format(
                                reference=q["answer"], candidate=answer.content
                            ),
                        }
                    ],
                    thinking=False,
                    stream=False,
                    max_tokens=5,
                    temperature=0.0,
                )
            except ModelError as exc:
                print(f"judge skipped {q['qid']}: {exc}", file=sys.stderr)
                continue
            verdicts.append(verdict.content.strip().upper().startswith("YES"))
    finally:
        await llm.aclose()
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--misses", type=int, default=15, help="print this many misses")
    parser.add_argument(
        "--no-context",
        action="store_true",
        help="index bare user messages (without the assistant message they answer)",
    )
    parser.add_argument(
        "--keywords-only", action="store_true", help="baseline: full-text search and dates only"
    )
    args = parser.parse_args()
    asyncio.run(run(args.data, args.misses, not args.no_context, args.keywords_only))


if __name__ == "__main__":
    main()
