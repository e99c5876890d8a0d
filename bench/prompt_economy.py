"""Prompt economy of a plain "hello" turn, and of a turn after 50 turns of history.

Runs real turns through the runtime (SQLite, graph, tools) against the loopback vLLM fake and
reads the requests the fake received. Tokens are *estimated* (no Qwen tokenizer can be fetched
here): 1 token per CJK character, 1 per 4 other characters, over the JSON the server receives
(messages and tool schemas), which is close to what Qwen3's chat template renders.

    python -m bench.prompt_economy
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from agent.runtime.service import Runtime
from agent.settings import load_settings
from bench.machine import describe
from connectors.base import Connector, InboundMessage, InboundSink, OutboundMessage
from memory.migrate import upgrade
from tests.fakes.vllm import FakeVLLM

_CJK = re.compile(r"[\u3400-\u9fff]")


def estimate_tokens(text: str) -> int:
    """Rough Qwen token count: CJK ≈ 1 token per character, other text ≈ 4 characters a token."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def rendered(body: dict[str, Any]) -> str:
    """What the server tokenises, in order: system prompt, tools (Qwen3 renders them into the
    system turn), then the other messages."""
    tools = json.dumps(body.get("tools", []), ensure_ascii=False, sort_keys=True)
    first, *rest = body["messages"]
    parts = [f"<|{first['role']}|>{first['content']}", tools]
    parts += [f"<|{m['role']}|>{m.get('content') or ''}" for m in rest]
    return "".join(parts)


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Collector(Connector):
    """A channel that just records replies."""

    id = "cli"

    def __init__(self) -> None:
        self.replied = asyncio.Event()

    async def start(self, sink: InboundSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> str:
        self.replied.set()
        return "1"


async def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="dadang-prompt-"))
    with FakeVLLM() as llm:
        # Extraction (one more call per message, after the reply) is off: the reply prompt is measured.
        settings = load_settings(
            home=home,
            llm_base_url=llm.url,
            timezone="Asia/Shanghai",
            memory_reflect=False,
            rate_messages_per_minute=0,  # 62 messages in a few seconds: not a flood to refuse
        )
        upgrade(settings.effective_database_url)
        channel = Collector()
        runtime = Runtime(settings, [channel])
        await runtime.start()
        try:

            async def turn(i: int, text: str) -> dict[str, Any]:
                channel.replied.clear()
                before = len(llm.requests)
                await channel.sink(
                    InboundMessage(
                        channel="cli",
                        external_user_id="local",
                        chat_id="local",
                        text=text,
                        channel_message_id=f"m{i}",
                    )
                )
                await channel.replied.wait()
                assert len(llm.requests) == before + 1, "expected exactly one model call"
                return llm.requests[-1]

            bodies = [await turn(0, "hello"), await turn(1, "你好，今天怎么样？")]
            for i in range(2, 62):
                bodies.append(await turn(i, f"message number {i} about my week"))
        finally:
            await runtime.stop()

    def share(body: dict[str, Any], following: dict[str, Any]) -> tuple[int, float]:
        text, nxt = rendered(body), rendered(following)
        total = estimate_tokens(text)
        return total, 100 * estimate_tokens(text[: common_prefix(text, nxt)]) / total

    first_total, first_share = share(bodies[0], bodies[1])
    late = [share(bodies[i], bodies[i + 1]) for i in range(50, 61)]
    print("| turn | prompt tokens (est.) | stable prefix (reused by the next turn) | model calls |")
    print("| --- | --- | --- | --- |")
    print(f'| "hello", first turn | {first_total} | {first_share:.0f} % | 1 |')
    print(
        f"| turns 51–61 (after 50 turns of history) | {min(t for t, _ in late)}–"
        f"{max(t for t, _ in late)} | mean {sum(p for _, p in late) / len(late):.0f} %, "
        f"min {min(p for _, p in late):.0f} % | 1 |"
    )
    print(f"\nmachine: {describe()}")


if __name__ == "__main__":
    asyncio.run(main())
