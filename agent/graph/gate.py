"""The `gate` node: the policy decides each tool call before `act` runs any of them.

A call the policy marks `ask` pauses the turn with a LangGraph `interrupt`; the runner turns the
interrupt into an approval request and resumes the thread once it is decided. The approvals
table, not the resume value, is what this node trusts: the node re-runs from its start on every
resume, and reading the decision from the row keeps a stale or misrouted resume value from ever
approving the wrong call.
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.graph.state import TurnDeps, TurnState
from agent.graph.toolset import visible
from agent.graph.untrusted import redact
from agent.policy.engine import Verdict, hosts_named
from agent.policy.rules import Decision
from automation.tools import Tool
from automation.tools.base import NETWORK_READS
from memory.approvals import APPROVED, EXPIRED, PENDING, ApprovalRecord


def loose_arguments(raw: str) -> dict[str, Any]:
    """The call's arguments as far as they parse (for targets and display), else empty."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def target_of(tool: Tool[Any], arguments: dict[str, Any]) -> str:
    """`Tool.target`, which must never break a turn even when a plug-in's does."""
    try:
        return str(tool.target(arguments) or "")[:300]
    except Exception:
        return ""


async def gate(state: TurnState, runtime: Runtime[TurnDeps]) -> dict[str, Any]:
    """Decide every call of the last assistant message; pause on the first undecided `ask`."""
    deps = runtime.context
    if deps.policy is None:
        return {"verdicts": {}}
    trusted = hosts_named(state["text"])
    allowed = visible(state)
    deferred = frozenset(state.get("deferred") or ())
    verdicts: dict[str, dict[str, Any]] = {}
    for call in state["messages"][-1].get("tool_calls", []):
        fn = call["function"]
        tool = deps.tools.get(fn["name"])
        if tool is None:
            continue  # `act` tells the model the tool does not exist
        target = target_of(tool, loose_arguments(fn["arguments"]))
        # A request this call already had is final: a grant or a policy edit made while it
        # waited must not overturn the user's explicit "no" (nor turn a "yes" into a new ask).
        asked = (
            await deps.approvals.find(state["inbound_id"], call["id"])
            if deps.approvals is not None
            else None
        )
        if asked is not None and asked.status != PENDING:
            verdicts[call["id"]] = _settled(asked).as_dict()
            continue
        verdict = await deps.policy.decide(
            user_id=state["user_id"],
            name=fn["name"],
            tool=tool,
            target=target,
            tainted=bool(state.get("tainted")),
            trusted_hosts=trusted,
            # A deferred tool is enabled, only not listed: calling it by name is allowed
            # (and `act` lists it from the next step on).
            enabled=allowed is None or fn["name"] in allowed or fn["name"] in deferred,
        )
        if verdict.decision is Decision.ASK:
            verdict = await _wait_for_user(state, deps, call, tool, target, verdict)
        verdicts[call["id"]] = verdict.as_dict()
    return {"verdicts": verdicts}


async def _wait_for_user(
    state: TurnState,
    deps: TurnDeps,
    call: dict[str, Any],
    tool: Tool[Any],
    target: str,
    verdict: Verdict,
) -> Verdict:
    payload = {
        "call_id": call["id"],
        "tool": tool.name,
        "risk": tool.risk.value if tool.risk else "undeclared",
        "target": target,
        # A standing grant for a network tool covers its host; for any other tool, the tool.
        "grant_target": target if tool.reads & NETWORK_READS else "",
        "arguments": redact(call["function"]["arguments"])[:4000],
        "reason": verdict.reason,
        "rule": verdict.rule,
        "may_always_allow": verdict.may_always_allow,
    }
    record: ApprovalRecord | None = None
    while True:
        if deps.approvals is not None:
            record = await deps.approvals.find(state["inbound_id"], call["id"])
        if record is not None and record.status != PENDING:
            break
        # Raises on the first call of this run; returns a resume value on a re-run. A value
        # that does not settle this call's row leads to the next interrupt, which pauses again.
        interrupt(payload)
    assert record is not None
    return _settled(record)


def _settled(record: ApprovalRecord) -> Verdict:
    """The verdict a decided request stands for."""
    rule = f"approval#{record.id}"
    if record.status == APPROVED:
        return Verdict(decision=Decision.ALLOW, rule=rule, reason="the user approved it")
    if record.status == EXPIRED:
        return Verdict(
            decision=Decision.DENY,
            rule=rule,
            reason=(
                "the approval request expired without an answer, so it was not done; tell the "
                "user and offer to try again"
            ),
        )
    return Verdict(
        decision=Decision.DENY,
        rule=rule,
        reason="the user rejected this action; do not retry it, ask what they want instead",
    )
