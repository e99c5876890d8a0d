"""Tool overhead: what the registry, the policy, the audit and the network guard add to an API
call, and how big the tool list of an imported API is in the prompt.

Load model (sequential, no think time): one coroutine alternates two kinds of call to a loopback
JSON echo server running in its own process (`bench.echo_server`), `--calls` of each after
`--warmup`:

- raw: `httpx.AsyncClient.get` on one shared client (keep-alive): the floor any HTTP tool pays;
- tool: what a turn does for a model's call of a declarative HTTP tool (GET with two query
  parameters and bearer auth from the secret resolver): registry lookup, JSON arguments parsed,
  the gate's target, `PolicyEngine.decide` (default policy), `Tool.call` (pydantic validation,
  the network guard's host check, the request, the response cut to the token budget and
  scrubbed of the secret), and `AuditLog.append` of act's `tool_call` row (SQLite file, WAL).

Overhead = tool − raw, p50/p95/p99 of the per-pair differences, and this process's CPU per call.

Tool list size: the OpenAPI document in `tests/data/openapi/` is imported (first `--operations`
operations) and the schemas the model would see are measured in characters and estimated
tokens (1 per CJK character, 1 per 4 other characters, the estimate `agent.graph.budget` uses).
With the built-in tools registered too, the tool tokens each request carries are measured both
ways: every tool listed, and with deferred loading at the default `tools_prompt_budget` (the
built-ins and `tool_search`; the imported tools are found by search).

    python -m bench.tool_overhead [--calls 3000] [--warmup 300] [--operations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from agent.graph.budget import estimate_tokens
from agent.graph.gate import loose_arguments, target_of
from agent.graph.toolset import schema_tokens, split
from agent.policy.engine import PolicyEngine
from agent.policy.rules import DEFAULT_POLICY, Policy
from agent.settings import Settings
from automation.http_tools import HttpToolSpec, build_tool
from automation.http_tools.openapi import import_openapi
from automation.http_tools.openapi_document import parse_document
from automation.http_tools.openapi_source import read_file
from automation.tools import ToolRegistry
from automation.tools.base import ToolContext
from automation.tools.builtin import register as register_builtin_tools
from automation.tools.scopes import DataScopes
from bench.machine import describe
from memory.audit import AuditLog
from memory.db import open_database
from memory.migrate import upgrade

TARGET_P50_MS = 3.0
ROOT = Path(__file__).resolve().parent.parent


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return statistics.median(ordered), q[94], q[98]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure_calls(port: int, calls: int, warmup: int, home: Path) -> dict[str, Any]:
    url = f"sqlite:///{home / 'bench.db'}"
    upgrade(url)
    db = open_database(url)
    audit = AuditLog(db)
    spec = HttpToolSpec.model_validate(
        {
            "name": "office_list_feedback",
            "description": "List customer feedback.",
            "method": "GET",
            "url": f"http://127.0.0.1:{port}/feedback",
            "parameters": [
                {"name": "since", "in": "query", "type": "string"},
                {"name": "limit", "in": "query", "type": "integer"},
            ],
            "auth": {"type": "bearer", "secret": "office_token"},
        }
    )

    async def resolve(user_id: int, name: str) -> str:
        return "bench-token-123"

    registry = ToolRegistry()
    registry.register(build_tool(spec, source="http:office", resolve_secret=resolve))
    engine = PolicyEngine(Policy.parse(DEFAULT_POLICY))
    scopes = DataScopes(api_hosts=(f"127.0.0.1:{port}",))
    raw_arguments = json.dumps({"since": "2025-03-10", "limit": 5})

    async def tool_call() -> None:
        tool = registry.get("office_list_feedback")
        assert tool is not None
        arguments = json.loads(raw_arguments)
        target = target_of(tool, loose_arguments(raw_arguments))
        verdict = await engine.decide(user_id=1, name=tool.name, tool=tool, target=target)
        ctx = ToolContext(user_id=1, timezone="UTC", db=db, now=datetime.now(UTC), scopes=scopes)
        result = await tool.call(arguments, ctx)
        assert "fb-000" in result
        await audit.append(
            actor="agent",
            action="tool_call",
            user_id=1,
            target=tool.name,
            detail={
                "message_id": 1,
                "risk": "read",
                "reads": sorted(tool.reads),
                "arguments": raw_arguments,
                "decision": verdict.decision.value,
                "rule": verdict.rule,
                "ran": True,
                "ok": True,
                "untrusted_output": True,
            },
        )

    raw: list[float] = []
    full: list[float] = []
    async with httpx.AsyncClient(trust_env=False) as client:

        async def raw_call() -> None:
            response = await client.get(
                f"http://127.0.0.1:{port}/feedback",
                params={"since": "2025-03-10", "limit": 5},
                headers={"Authorization": "Bearer bench-token-123"},
            )
            assert "fb-000" in response.text

        for _ in range(warmup):
            await raw_call()
            await tool_call()
        cpu_raw = cpu_tool = 0.0
        for _ in range(calls):
            c0, t0 = _cpu(), time.perf_counter()
            await raw_call()
            c1, t1 = _cpu(), time.perf_counter()
            await tool_call()
            c2, t2 = _cpu(), time.perf_counter()
            raw.append((t1 - t0) * 1000)
            full.append((t2 - t1) * 1000)
            cpu_raw += c1 - c0
            cpu_tool += c2 - c1
    await db.dispose()
    diffs = [f - r for f, r in zip(full, raw, strict=True)]
    return {
        "raw": _percentiles(raw),
        "tool": _percentiles(full),
        "overhead": _percentiles(diffs),
        "cpu_raw_ms": cpu_raw / calls * 1000,
        "cpu_tool_ms": cpu_tool / calls * 1000,
    }


def measure_tool_list(operations: int) -> dict[str, Any] | None:
    """Schema size of the tools imported from the saved real-world document (its first
    `operations` operations), as the model would see them in every prompt."""
    folder = ROOT / "tests" / "data" / "openapi"
    documents = sorted(p for p in folder.glob("*") if p.suffix in (".json", ".yaml", ".yml"))
    if not documents:
        return None
    source = read_file(str(documents[0]))
    document = parse_document(source.text, source=source.location)
    result = import_openapi(document, name="api", base_url="http://127.0.0.1:9")
    registry = ToolRegistry()
    for raw in result.tools[:operations]:
        registry.register(build_tool(HttpToolSpec.model_validate(raw), source="openapi:api"))
    schemas = registry.schemas()
    text = json.dumps(schemas, ensure_ascii=False)
    tokens = estimate_tokens(text)
    count = len(schemas)
    register_builtin_tools(registry)
    everything = [n for n in registry.names() if n != "tool_search"]
    budget = Settings.model_fields["tools_prompt_budget"].default
    deferred = split(registry, everything, budget=budget)
    return {
        "document": documents[0].name,
        "operations_in_document": result.operations,
        "tools": count,
        "chars": len(text),
        "tokens_estimated": tokens,
        "tokens_per_tool": round(tokens / count, 1),
        "tokens_for_200": round(tokens / count * 200),
        "request_tokens_all_listed": schema_tokens(registry, frozenset(everything)),
        "request_tokens_deferred": schema_tokens(registry, frozenset(deferred.tools)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--operations", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen([sys.executable, "-m", "bench.echo_server", str(port_file)])
        try:
            deadline = time.monotonic() + 10
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline:
                    raise SystemExit("echo server did not start")
                time.sleep(0.05)
            port = int(port_file.read_text())
            figures = asyncio.run(measure_calls(port, args.calls, args.warmup, Path(tmp)))
        finally:
            server.terminate()
            server.wait(5)
    print(f"machine: {describe()}")
    print(f"calls: {args.calls} of each kind after {args.warmup} warm-up, alternating")
    print("| | p50 | p95 | p99 |")
    print("| --- | --- | --- | --- |")
    for key in ("raw", "tool", "overhead"):
        p50, p95, p99 = figures[key]
        print(f"| {key} (ms) | {p50:.2f} | {p95:.2f} | {p99:.2f} |")
    print(f"CPU per call: raw {figures['cpu_raw_ms']:.2f} ms, tool {figures['cpu_tool_ms']:.2f} ms")
    met = "met" if figures["overhead"][0] < TARGET_P50_MS else "NOT met"
    print(f"target overhead p50 < {TARGET_P50_MS} ms: {met}")
    listing = measure_tool_list(args.operations)
    if listing is not None:
        print(f"tool list: {json.dumps(listing, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
