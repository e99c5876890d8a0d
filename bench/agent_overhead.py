"""Per-turn overhead of Dadang above the model's latency, through the real runtime.

Load model (bench/README.md, shared BENCH.md): closed loop with think time. N conversations each
send a Telegram message, wait for the reply, think (exponential, mean 2 s), repeat. The service is
a real `dadang run` process (SQLite, outbox, Telegram connector) talking to the loopback fakes,
which run in this process so their CPU is not charged to the service.

overhead = reply seen by the Telegram fake − message pushed − time the fake model held the request.

    python -m bench.agent_overhead                  # N = 1, 50, 200, think 2 s
    python -m bench.agent_overhead --n 200 --think 0  # saturation
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.machine import describe, process_cpu_seconds
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

JSON = dict[str, Any]


class TimedTelegram(FakeTelegram):
    """The Telegram fake, waking the driver when a message reaches a chat."""

    def __init__(self) -> None:
        super().__init__()
        self.waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[float]]] = {}

    def _record(self, method: str, p: JSON, message: JSON, extra: JSON | None = None) -> None:
        super()._record(method, p, message, extra)
        waiter = self.waiters.pop(int(message["chat"]["id"]), None)
        if waiter is not None:
            loop, future = waiter
            now = time.perf_counter()
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(now))


@dataclass
class Result:
    n: int
    think: float
    turns: int = 0
    seconds: float = 0.0
    overhead_ms: list[float] = field(default_factory=list)
    model_ms: float = 0.0
    cpu_s: float = 0.0
    driver_cpu_s: float = 0.0
    """CPU of this process (fakes + load driver): near 100 % means the figures are suspect."""

    def pct(self, q: float) -> float:
        data = sorted(self.overhead_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q * len(data)))]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_one(
    n: int,
    *,
    think: float,
    duration: float,
    warmup: float,
    latency: float,
    profile: str | None = None,
) -> Result:
    home = Path(tempfile.mkdtemp(prefix="dadang-bench-"))
    users = list(range(100_000, 100_000 + n))
    port = _free_port()
    with FakeVLLM(latency=latency) as llm, TimedTelegram() as tg:
        env = {
            **os.environ,
            "DADANG_HOME": str(home),
            "DADANG_LLM_BASE_URL": llm.url,
            "DADANG_TELEGRAM_TOKEN": tg.token,
            "DADANG_TELEGRAM_API_BASE": tg.api_base,
            "DADANG_TELEGRAM_ALLOWED_USERS": ",".join(map(str, users)),
            "DADANG_TELEGRAM_POLL_TIMEOUT": "10",
            "DADANG_HTTP_PORT": str(port),
            "DADANG_LOG_LEVEL": "WARNING",
            # The core loop is measured; extraction's extra model call is another benchmark.
            "DADANG_MEMORY_REFLECT": "false",
        }
        log = (home / "run.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli.main", "run"], env=env, stdout=log, stderr=log
        )
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            spy = None
            if profile:
                spy = subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--duration",
                        str(int(duration)),
                        "--format",
                        "raw",
                        "--output",
                        profile,
                        "--rate",
                        "200",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            result = await _drive(tg, llm, users, proc.pid, think, duration, warmup, n)
            if spy is not None:
                spy.wait(60)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            log.close()
    return result


async def _drive(
    tg: TimedTelegram,
    llm: FakeVLLM,
    users: list[int],
    pid: int,
    think: float,
    duration: float,
    warmup: float,
    n: int,
) -> Result:
    loop = asyncio.get_running_loop()
    result = Result(n=n, think=think)
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    cpu_start: list[float] = []
    held_start: list[int] = []

    async def conversation(user: int) -> None:
        rng = random.Random(user)
        await asyncio.sleep(rng.uniform(0, max(think, 0.05)))  # spread the first messages
        seq = 0
        while time.perf_counter() < stop_at:
            seq += 1
            future: asyncio.Future[float] = loop.create_future()
            tg.waiters[user] = (loop, future)
            sent_at = time.perf_counter()
            tg.push_message(user, f"turn {seq} from {user}")
            try:
                replied_at = await asyncio.wait_for(future, timeout=60)
            except TimeoutError:
                print(f"conversation {user}: no reply within 60 s", file=sys.stderr)
                return
            if sent_at >= measure_from and replied_at <= stop_at:
                result.overhead_ms.append((replied_at - sent_at) * 1000)
            if think > 0:
                await asyncio.sleep(rng.expovariate(1 / think))

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_start.append(process_cpu_seconds(pid))
        cpu_start.append(process_cpu_seconds(os.getpid()))
        held_start.append(len(llm.held_ms))
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        result.cpu_s = process_cpu_seconds(pid) - cpu_start[0]
        result.driver_cpu_s = process_cpu_seconds(os.getpid()) - cpu_start[1]
        held = llm.held_ms[held_start[0] :]
        result.model_ms = statistics.fmean(held) if held else 0.0

    await asyncio.gather(sampler(), *(conversation(u) for u in users))
    result.turns = len(result.overhead_ms)
    result.seconds = duration
    result.overhead_ms = [ms - result.model_ms for ms in result.overhead_ms]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument(
        "--think", type=float, default=2.0, help="mean think time, s (0 = saturation)"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per N")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.2, help="fake model latency, s")
    parser.add_argument("--profile", help="write py-spy collapsed stacks of the service here")
    args = parser.parse_args()
    rows = []
    for n in args.n:
        r = asyncio.run(
            run_one(
                n,
                think=args.think,
                duration=args.duration,
                warmup=args.warmup,
                latency=args.latency,
                profile=args.profile,
            )
        )
        rows.append(r)
        print(
            f"N={r.n:4d} think={r.think:.1f}s turns={r.turns:6d} turns/s={r.turns / r.seconds:7.1f} "
            f"overhead p50={r.pct(0.5):6.1f} p95={r.pct(0.95):6.1f} p99={r.pct(0.99):6.1f} ms "
            f"model={r.model_ms:.1f} ms cpu/turn={1000 * r.cpu_s / max(r.turns, 1):.1f} ms "
            f"cpu={100 * r.cpu_s / r.seconds:.0f}% fakes+driver cpu={100 * r.driver_cpu_s / r.seconds:.0f}%",
            flush=True,
        )
    print(f"machine: {describe()}")


if __name__ == "__main__":
    main()
