"""The tools one user sees in one turn: registered, not denied by the policy, switched on.

Computed once at `recall` and kept in the turn's state, so a turn resumed after an approval
sees the same list it planned with, and the schema list (sorted) stays a stable prompt prefix.

When the user's HTTP, OpenAPI and MCP tools would cost more prompt tokens than
`tools_prompt_budget`, they are deferred (the way large agent frameworks load tools lazily):
the model gets the built-in tools and `tool_search`, and what a search finds is listed from the
next step of the same turn on. Built-in tools marked `on_demand` (the file and table tools:
large schemas, needed only around files) are always reached that way. A deferred tool called
by name runs like any other (it is enabled, only not listed) and is listed from the next step
on. The next turn starts from the short list again, so the prompt prefix stays the same across
turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.graph.budget import estimate_tokens
from agent.graph.state import TurnDeps, TurnState
from automation.tools import ToolRegistry
from automation.tools.tool_search import DeferredCatalog, ToolSearch
from memory.tool_access import is_enabled

TOOL_SEARCH = ToolSearch.name
_SIZES_KEPT = 64


@dataclass(frozen=True, kw_only=True)
class Toolset:
    """One user's tools for one turn."""

    tools: list[str]
    """Listed to the model with every request, sorted."""
    deferred: list[str] = field(default_factory=list)
    """Enabled, but offered through `tool_search` only, sorted."""


async def turn_tools(deps: TurnDeps, user_id: int) -> Toolset:
    """The tools `user_id` may use now, and which of them are deferred."""
    rules = await deps.tool_access.rules(user_id) if deps.tool_access is not None else []
    owner = deps.owner_id is None or user_id == deps.owner_id
    names: list[str] = []
    searchable = False
    for name in deps.tools.names():
        tool = deps.tools.get(name)
        assert tool is not None
        if deps.policy is not None and deps.policy.forbids(name, tool):
            continue
        if deps.tool_access is not None and not is_enabled(
            name, tool.source, owner=owner, rules=rules
        ):
            continue
        if name == TOOL_SEARCH:
            searchable = True  # listed only when something is deferred
            continue
        names.append(name)
    # Without a usable tool_search, deferred tools could never be reached: send them all.
    return split(deps.tools, names, budget=deps.tools_prompt_budget if searchable else 0)


def split(registry: ToolRegistry, names: list[str], *, budget: int) -> Toolset:
    """Defer the non-built-in tools among `names` (sorted) when their schemas cost more than
    `budget` estimated tokens (0: never), and the built-in tools marked `on_demand` always
    (unless `budget` is 0). The other built-in tools are always listed: they are a fixed, known
    cost, and the ones every conversation needs."""
    if budget <= 0:
        return Toolset(tools=list(names))
    external = [n for n in names if _source(registry, n) != "builtin"]
    deferred = {n for n in names if _on_demand(registry, n)}
    if external and schema_tokens(registry, frozenset(external)) > budget:
        deferred.update(external)
    if not deferred:
        return Toolset(tools=list(names))
    listed = set(names).difference(deferred) | {TOOL_SEARCH}
    return Toolset(tools=sorted(listed), deferred=sorted(deferred))


def _on_demand(registry: ToolRegistry, name: str) -> bool:
    tool = registry.get(name)
    return tool is not None and tool.on_demand


def _source(registry: ToolRegistry, name: str) -> str:
    tool = registry.get(name)
    return tool.source if tool is not None else "builtin"


_SIZES: dict[frozenset[str], tuple[list[dict[str, Any]], int]] = {}


def schema_tokens(registry: ToolRegistry, names: frozenset[str]) -> int:
    """Estimated prompt tokens of the schemas of `names`.

    The registry builds each distinct schema list once; its size is measured once too. The
    list is kept with the figure, so a rebuilt list (another registry, a cleared cache) is
    measured afresh instead of matching a stale entry.
    """
    schemas = registry.schemas(names)
    cached = _SIZES.get(names)
    if cached is not None and cached[0] is schemas:
        return cached[1]
    tokens = estimate_tokens(json.dumps(schemas, ensure_ascii=False))
    if len(_SIZES) >= _SIZES_KEPT:
        _SIZES.clear()
    _SIZES[names] = (schemas, tokens)
    return tokens


def visible(state: TurnState) -> frozenset[str] | None:
    """The turn's tool names (None: a checkpoint from before per-turn lists, so all)."""
    names = state.get("tools")
    return frozenset(names) if names is not None else None


def catalog(deps: TurnDeps, state: TurnState) -> DeferredCatalog | None:
    """What `tool_search` searches in this step (None: nothing is deferred)."""
    deferred = state.get("deferred") or []
    return DeferredCatalog(deps.tools, deferred) if deferred else None


def activated(state: TurnState, found: DeferredCatalog | None) -> dict[str, Any]:
    """The state update listing the tools a search found or the model called by name (sorted:
    a stable prefix again)."""
    names = found.activated if found is not None else []
    if not names:
        return {}
    return {
        "tools": sorted({*(state.get("tools") or []), *names}),
        "deferred": [n for n in state.get("deferred") or [] if n not in names],
    }
