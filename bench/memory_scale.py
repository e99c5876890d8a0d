"""Recall latency and ingestion throughput as one user's memories grow (1k → 10k → 100k).

The user is one of 100 (the other 99 hold `--others-size` memories each, so every query really
filters by user). Embedded Chroma + SQLite under a temp DADANG_HOME, the default offline
embedder. Recall latency includes embedding the query. Ingestion (database + embedding + index)
is compared with the embedder's raw throughput on the same texts, in the same run.

    python -m bench.memory_scale [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.machine import describe
from memory.db import open_database
from memory.embeddings import LocalEmbedder
from memory.identities import IdentityStore
from memory.memories import NewMemory
from memory.migrate import upgrade
from memory.service import MemoryService
from memory.vectors import VectorIndex

_NAMES = ["王总", "李经理", "Sarah", "Tom", "小陈", "Dr. Patel", "妈妈", "Mia", "张老师", "Ahmed"]
_PLACES = ["深圳", "北京", "Shanghai", "London", "杭州", "Berlin", "成都", "Tokyo"]
_THINGS = ["季度报告", "合同", "the launch deck", "预算表", "the grant proposal", "体检报告",
           "the design review", "周报", "the tax return", "装修方案"]  # fmt: skip
_TEMPLATES = [
    "{day}: 答应{name}在{date}前把{thing}发过去",
    "{day}: promised {name} to finish {thing} by {date}",
    "{day}: 不喜欢在{place}开早会，偏好下午和{name}沟通",
    "{day}: prefers window seats when flying to {place}",
    "{day}: felt exhausted after discussing {thing} with {name}",
    "{day}: 心情不错，和{name}在{place}吃了饭",
    "{day}: declined the proposal to move {thing} review to {place}",
    "{day}: 拒绝了把{thing}交给{name}的建议",
    "{day}: {name} is responsible for {thing} in {place}",
    "{day}: 下周{date}要去{place}出差，见{name}",
]
_QUERIES = [
    "我答应过{name}什么？", "what did I promise {name}?", "我对开会时间有什么偏好？",
    "how was I feeling about {thing}?", "谁负责{thing}？", "when am I going to {place}?",
    "我拒绝过哪些建议？", "which proposals did I turn down about {thing}?",
]  # fmt: skip


def texts(rng: random.Random, n: int) -> list[str]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        day = start + timedelta(minutes=37 * i)
        out.append(
            rng.choice(_TEMPLATES).format(
                day=f"{day:%Y-%m-%d}",
                date=f"{(day + timedelta(days=rng.randint(1, 30))):%m-%d}",
                name=rng.choice(_NAMES),
                place=rng.choice(_PLACES),
                thing=rng.choice(_THINGS),
            )
            + f" #{i}"
        )
    return out


def queries(rng: random.Random, n: int) -> list[str]:
    return [
        rng.choice(_QUERIES).format(
            name=rng.choice(_NAMES), place=rng.choice(_PLACES), thing=rng.choice(_THINGS)
        )
        for _ in range(n)
    ]


async def run(sizes: list[int], others: int, others_size: int, n_queries: int) -> None:
    rng = random.Random(7)
    home = Path(tempfile.mkdtemp(prefix="dadang-scale-"))
    url = f"sqlite:///{home / 'scale.db'}"
    upgrade(url)
    db = open_database(url)
    embedder = LocalEmbedder()
    await embedder.warm_up()
    service = MemoryService(db, index=VectorIndex(path=home / "chroma"), embedder=embedder)
    await service.start()
    identities = IdentityStore(db)

    sample = texts(rng, 5000)
    t0 = time.perf_counter()
    for i in range(0, len(sample), 256):
        await embedder.embed_passages(sample[i : i + 256])
    raw_rate = len(sample) / (time.perf_counter() - t0)

    for k in range(others):
        uid = await identities.create_user(f"other-{k}")
        await service.import_many(uid, [NewMemory(content=t) for t in texts(rng, others_size)])
    target = await identities.create_user("target")
    print(f"raw embedding: {raw_rate:.0f} passages/s (batch 256)")
    print(f"{others} other users × {others_size} memories loaded\n")
    print(
        "| memories (target user) | ingestion/s | ingestion ÷ raw | recall p50 | recall p95 | RSS |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    have = 0
    for size in sizes:
        batch = texts(rng, size - have)
        t0 = time.perf_counter()
        await service.import_many(target, [NewMemory(content=t) for t in batch])
        rate = len(batch) / (time.perf_counter() - t0)
        have = size
        latencies = []
        for q in queries(rng, n_queries):
            t1 = time.perf_counter()
            await service.search(target, q, limit=10)
            latencies.append((time.perf_counter() - t1) * 1000)
        latencies.sort()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"| {size:,} | {rate:.0f} | {rate / raw_rate:.2f} | "
            f"{statistics.median(latencies):.1f} ms | {latencies[int(len(latencies) * 0.95)]:.1f} ms "
            f"| {rss:.0f} MB |",
            flush=True,
        )
    await service.close()
    await db.dispose()
    print(f"\nmachine: {describe()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--others", type=int, default=99)
    parser.add_argument("--others-size", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.sizes, args.others, args.others_size, args.queries))


if __name__ == "__main__":
    main()
