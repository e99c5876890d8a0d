"""`policy.yaml`: the user's rules, parsed strictly, with documented defaults.

A broken policy file stops the service with the line to fix (fail closed): running on defaults
the user did not choose would silently widen what the assistant may do.
"""

from __future__ import annotations

import fnmatch
import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import ConfigError
from automation.tools.base import RiskLevel
from automation.tools.scopes import DataScopes

POLICY_FILE = "policy.yaml"


class Decision(StrEnum):
    """What a tool call needs."""

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


DEFAULT_POLICY = """\
# Dadang policy: what the assistant may do without asking you, and what it may read.
# Check a change with `dadang policy check`; the service reloads this file when it starts.
version: 1

# What a tool call needs by risk level when no rule under `tools` names the tool:
# allow (just do it), ask (wait for your Approve / Reject) or deny (never).
risk:
  read: allow           # look things up: time, memories, reminders, web pages
  write: allow          # change your own data: save a memory, set a reminder
  irreversible: ask     # cannot be undone: forget a memory for good, submit a form
  external-send: ask    # leaves this assistant: mail, a message to someone else, an API write
  payment: ask          # moves money; "Always allow" is never offered for these

# Tools that declare no risk (plug-ins, imported API operations) need this.
unknown_tool: ask

# Rules per tool, stronger than the risk level. Names may use * wildcards ("http_*").
# A deny here cannot be lifted by "Always allow"; an allow is still turned into ask after the
# assistant read untrusted content (a web page, an email) in the same turn.
tools: {}
#  reminder_cancel: ask
#  memory_forget: allow

# What the agent may read. "*" means everything public; loopback and private network
# addresses (your router, cluster services) must be named, e.g. "192.168.1.10" or "nas.lan:8080".
scopes:
  # Memory kinds: fact, preference, mood, commitment, rejected_proposal, person, project, event,
  # instruction. A kind left out never enters a prompt or a memory tool's answer.
  memory_kinds: ["*"]
  calendars: ["*"]      # calendar1, calendar2, … in the order of DADANG_CALENDAR_URLS
  sites: ["*"]          # hosts web_read and the browser may open
  api_hosts: ["*"]      # hosts API tools may call

approvals:
  expire_minutes: 480   # an unanswered request expires (and you are told) after this long
  always_allow: true    # offer "Always allow this" (never for payment)

audit:
  log_prompts: false    # also store the full prompt text of each model call in the audit trail
"""

_Rule = Literal["allow", "ask", "deny"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RiskRules(_Strict):
    read: _Rule = "allow"
    write: _Rule = "allow"
    irreversible: _Rule = "ask"
    external_send: _Rule = Field(default="ask", alias="external-send")
    payment: _Rule = "ask"

    def for_level(self, level: RiskLevel) -> Decision:
        return Decision(getattr(self, level.value.replace("-", "_")))


class ScopeRules(_Strict):
    memory_kinds: list[str] = ["*"]
    calendars: list[str] = ["*"]
    sites: list[str] = ["*"]
    api_hosts: list[str] = ["*"]

    @field_validator("memory_kinds", "calendars", "sites", "api_hosts")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        cleaned = [str(v).strip().lower() for v in value if str(v).strip()]
        return cleaned


class ApprovalRules(_Strict):
    expire_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    always_allow: bool = True


class AuditRules(_Strict):
    log_prompts: bool = False


class PolicyFile(_Strict):
    """The parsed file; `Policy` adds the lookups."""

    version: Literal[1] = 1
    risk: RiskRules = RiskRules()
    unknown_tool: _Rule = "ask"
    tools: dict[str, _Rule] = {}
    scopes: ScopeRules = ScopeRules()
    approvals: ApprovalRules = ApprovalRules()
    audit: AuditRules = AuditRules()


class Policy:
    """The rules in force, with the file's text and digest (audited when it changes)."""

    def __init__(self, rules: PolicyFile, *, text: str, path: Path | None) -> None:
        self.rules = rules
        self.text = text
        self.path = path
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        self.scopes = DataScopes(
            memory_kinds=tuple(rules.scopes.memory_kinds),
            calendars=tuple(rules.scopes.calendars),
            sites=tuple(rules.scopes.sites),
            api_hosts=tuple(rules.scopes.api_hosts),
        )
        # Exact names first, then patterns in file order: the most specific rule wins.
        self._exact = {k: Decision(v) for k, v in rules.tools.items() if "*" not in k}
        self._patterns = [(k, Decision(v)) for k, v in rules.tools.items() if "*" in k]

    @classmethod
    def parse(cls, text: str, *, path: Path | None = None) -> Policy:
        """Parse policy text.

        Raises:
            ConfigError: invalid YAML or an unknown or invalid setting; the message says where.
        """
        where = str(path) if path else POLICY_FILE
        try:
            data: Any = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{where}{line} is not valid YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping of settings, not {type(data).__name__}")
        try:
            rules = PolicyFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{where} is invalid: {problems}") from exc
        return cls(rules, text=text, path=path)

    @classmethod
    def load(cls, home: Path, *, create: bool = False) -> Policy:
        """The policy of `home` (`DADANG_HOME/policy.yaml`); the documented defaults if absent.

        With `create`, an absent file is written with the defaults so the user can read them.
        """
        path = home / POLICY_FILE
        if not path.exists():
            if create:
                home.mkdir(parents=True, exist_ok=True)
                path.write_text(DEFAULT_POLICY, encoding="utf-8")
            return cls.parse(DEFAULT_POLICY, path=path)
        return cls.parse(path.read_text(encoding="utf-8"), path=path)

    def tool_rule(self, name: str) -> tuple[Decision, str] | None:
        """The `tools:` rule naming this tool, and its key."""
        if name in self._exact:
            return self._exact[name], name
        for pattern, decision in self._patterns:
            if fnmatch.fnmatchcase(name, pattern):
                return decision, pattern
        return None

    def risk_rule(self, level: RiskLevel | None) -> tuple[Decision, str]:
        """The rule for a risk level (None: the tool declared none)."""
        if level is None:
            return Decision(self.rules.unknown_tool), "unknown_tool"
        return self.rules.risk.for_level(level), f"risk.{level.value}"
