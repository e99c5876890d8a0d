"""`tool_search`: find the tools that were left out of the prompt, and make them callable.

A user with an imported API of 200 operations would pay ~16k prompt tokens per request for the
schemas alone. Past a budget those tools are deferred: the model sees this one tool instead,
searches by what it wants to do, and the tools it finds are sent with the next request.

Matching is plain and deterministic (no model, no embeddings): lowercase words of the tool's
name, description and parameter names, and character pairs for Chinese, Japanese and Korean
text; a query word found in the name counts twice. Ties go by name, so the same query always
gives the same list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from automation.tools.base import RiskLevel, Tool, ToolContext, ToolRegistry

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_STOP_WORDS = (
    "an and are be by can do for from how in is it me my of on or please the this to what "
    "which with"
)
_STOP = frozenset(_STOP_WORDS.split())
"""English words too common to say anything about a tool."""
_LINE = 160


def terms(text: str) -> set[str]:
    """The words of `text` that matching compares: lowercase, `movieId` split in two, plural
    `s` dropped, very common words left out; CJK runs become overlapping character pairs
    (Chinese has no spaces, and pairs match most words without a dictionary)."""
    text = _CAMEL.sub(" ", text).lower()
    found: set[str] = set()
    for word in _WORD.findall(text):
        if len(word) < 2 or word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        found.add(word)
    for run in _CJK.findall(text):
        if len(run) == 1:
            found.add(run)
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def _score(wanted: set[str], schema: dict[str, Any]) -> int:
    fn = schema["function"]
    named = terms(fn["name"])
    parameters = fn.get("parameters") or {}
    described = terms(fn.get("description") or "") | terms(
        " ".join(parameters.get("properties") or {})
    )
    return sum(2 if t in named else 1 if t in described else 0 for t in wanted)


class DeferredCatalog:
    """The `ToolCatalog` of one turn: the tools deferred for this user (already filtered by the
    policy and the user's switches, so nothing else can be found) and what was activated."""

    def __init__(self, registry: ToolRegistry, names: Iterable[str]) -> None:
        self._registry = registry
        self._names = frozenset(n for n in names if registry.get(n) is not None)
        self._activated: list[str] = []

    @property
    def activated(self) -> list[str]:
        """Tools found this turn, sorted."""
        return sorted(self._activated)

    def search(self, query: str, limit: int) -> list[Tool[Any]]:
        """The deferred tools matching `query`, best first, at most `limit`."""
        wanted = terms(query)
        if not wanted:
            return []
        # The registry builds this schema list once per set of names, not per search.
        ranked = sorted(
            (-score, schema["function"]["name"])
            for schema in self._registry.schemas(self._names)
            if (score := _score(wanted, schema)) > 0
        )
        found = [self._registry.get(name) for _, name in ranked[:limit]]
        return [tool for tool in found if tool is not None]

    def activate(self, names: list[str]) -> None:
        """Make deferred `names` callable for the rest of the turn (others are ignored)."""
        for name in names:
            if name in self._names and name not in self._activated:
                self._activated.append(name)


class ToolSearchArgs(BaseModel):
    query: str = Field(
        min_length=1,
        max_length=300,
        description=(
            "What you want to do, in the API's words, e.g. 'book a meeting room' or '查询会议室'"
        ),
    )
    limit: int = Field(default=8, ge=1, le=20)


def _summary(tool: Tool[Any]) -> str:
    lines = tool.description.strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= _LINE else line[: _LINE - 1] + "…"


class ToolSearch(Tool[ToolSearchArgs]):
    name = "tool_search"
    description = (
        "Find unlisted tools by what you want to do (they become callable), or call one by "
        "name: file_list, file_send, file_download, table_read, table_write (CSV/Excel)."
    )
    args_model = ToolSearchArgs
    risk = RiskLevel.READ

    async def run(self, args: ToolSearchArgs, ctx: ToolContext) -> str:
        if ctx.catalog is None:
            return "Every tool you can use is already listed; call it directly."
        found = ctx.catalog.search(args.query, args.limit)
        if not found:
            return (
                f"No tool matches {args.query!r}. Search again with other words (the action "
                "and the thing it acts on, in English for most APIs), or tell the user that no "
                "tool they have installed does this."
            )
        ctx.catalog.activate([tool.name for tool in found])
        lines = [f"Found {len(found)}; callable now (their parameters come with your next step):"]
        for tool in found:
            risk = tool.risk.value if tool.risk is not None else "undeclared risk"
            lines.append(f"- {tool.name} ({tool.source}, {risk}): {_summary(tool)}")
        return "\n".join(lines)
