"""Policy precedence, the policy file's validation, and the data scopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from agent.errors import ConfigError
from agent.policy.engine import PolicyEngine, hosts_named
from agent.policy.limits import RateLimiter
from agent.policy.rules import DEFAULT_POLICY, POLICY_FILE, Decision, Policy
from automation.tools import RiskLevel, Tool, ToolContext
from automation.tools.scopes import DataScopes, is_private_host
from memory.approval_models import PolicyGrant
from memory.audit import AuditLog
from memory.db import open_database
from memory.grants import GrantStore
from memory.identities import IdentityStore
from memory.types import utcnow


class _Args(BaseModel):
    pass


def make_tool(name: str, risk: RiskLevel | None, reads: frozenset[str] = frozenset()) -> Tool[Any]:
    class _T(Tool[_Args]):
        args_model = _Args

        async def run(self, args: _Args, ctx: ToolContext) -> str:
            return "ok"

    _T.name = name  # type: ignore[misc]
    _T.description = name  # type: ignore[misc]
    _T.risk = risk  # type: ignore[misc]
    _T.reads: ClassVar[frozenset[str]] = reads  # type: ignore[misc]
    return _T()


WRITE = make_tool("note_write", RiskLevel.WRITE)
READ = make_tool("note_read", RiskLevel.READ)
FORGET = make_tool("forget", RiskLevel.IRREVERSIBLE)
PAY = make_tool("pay", RiskLevel.PAYMENT)
SEND = make_tool("mail_send", RiskLevel.EXTERNAL_SEND)
PLUGIN = make_tool("plugin_thing", None)
FETCH = make_tool("fetch", RiskLevel.READ, frozenset({"web"}))


def engine(text: str = DEFAULT_POLICY, grants: GrantStore | None = None) -> PolicyEngine:
    return PolicyEngine(Policy.parse(text), grants)


async def verdict(e: PolicyEngine, tool: Tool[Any], **kw: Any) -> tuple[str, str]:
    v = await e.decide(user_id=1, name=tool.name, tool=tool, target=kw.pop("target", ""), **kw)
    return v.decision.value, v.rule


async def test_the_documented_defaults_by_risk_level() -> None:
    e = engine()
    assert await verdict(e, READ) == ("allow", "risk.read")
    assert await verdict(e, WRITE) == ("allow", "risk.write")
    assert await verdict(e, FORGET) == ("ask", "risk.irreversible")
    assert await verdict(e, SEND) == ("ask", "risk.external-send")
    assert await verdict(e, PAY) == ("ask", "risk.payment")
    assert await verdict(e, PLUGIN) == ("ask", "unknown_tool")


async def test_tool_rules_beat_risk_rules_and_exact_names_beat_patterns() -> None:
    e = engine("tools:\n  note_*: deny\n  note_read: allow\n  forget: allow\nrisk:\n  write: ask\n")
    assert await verdict(e, READ) == ("allow", "tools.note_read")
    assert await verdict(e, WRITE) == ("deny", "tools.note_*")
    assert await verdict(e, FORGET) == ("allow", "tools.forget")
    assert await verdict(e, SEND) == ("ask", "risk.external-send")


async def test_deny_explains_itself_and_nothing_lifts_it(tmp_path: Path) -> None:
    e = engine("risk:\n  payment: deny\n")
    v = await e.decide(user_id=1, name="pay", tool=PAY, target="")
    assert v.decision is Decision.DENY
    assert "forbids pay" in v.reason and "risk.payment" in v.reason


async def test_taint_turns_allow_into_ask_but_not_deny() -> None:
    e = engine("tools:\n  note_write: allow\n  forget: deny\n")
    assert await verdict(e, WRITE, tainted=True) == ("ask", "taint")
    assert await verdict(e, FORGET, tainted=True) == ("deny", "tools.forget")
    assert await verdict(e, READ, tainted=True) == ("allow", "risk.read")
    v = await e.decide(user_id=1, name="note_write", tool=WRITE, target="", tainted=True)
    assert not v.may_always_allow  # a planted request never becomes a standing grant


async def test_after_taint_a_network_read_asks_unless_the_user_named_the_host() -> None:
    e = engine()
    named = hosts_named("please read https://news.example.com/today and 127.0.0.1:8080")
    assert named == {"news.example.com", "127.0.0.1:8080"}
    kw = {"tainted": True, "trusted_hosts": named}
    assert await verdict(e, FETCH, target="news.example.com", **kw) == ("allow", "risk.read")
    assert await verdict(e, FETCH, target="127.0.0.1:8080", **kw) == ("allow", "risk.read")
    assert await verdict(e, FETCH, target="127.0.0.1:9090", **kw) == ("ask", "taint")
    assert await verdict(e, FETCH, target="evil.example", **kw) == ("ask", "taint")
    assert await verdict(e, FETCH, target="evil.example") == ("allow", "risk.read")


async def test_grants_allow_asks_but_never_payments_or_tainted_calls(tmp_path: Path) -> None:
    from memory.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'g.db'}"
    upgrade(url)
    db = open_database(url)
    try:
        owner = await IdentityStore(db).ensure_owner(name="o")
        async with db.engine.begin() as conn:
            for tool, target in (("forget", ""), ("pay", ""), ("fetch", "a.example")):
                await conn.execute(
                    PolicyGrant.__table__.insert().values(
                        user_id=owner.id, tool=tool, target=target, created_at=utcnow()
                    )
                )
        grants = GrantStore(db, AuditLog(db))
        e = engine("tools:\n  fetch: ask\n", grants)

        async def check(tool: Tool[Any], **kw: Any) -> tuple[str, str]:
            v = await e.decide(user_id=owner.id, name=tool.name, tool=tool, **kw)
            return v.decision.value, v.rule.split("#")[0]

        assert await check(FORGET, target="memory:3") == ("allow", "grant")
        assert await check(PAY, target="") == ("ask", "risk.payment")
        assert await check(FETCH, target="a.example") == ("allow", "grant")
        assert await check(FETCH, target="b.example") == ("ask", "tools.fetch")
        assert await check(FORGET, target="", tainted=True) == ("ask", "taint")
        other = await e.decide(user_id=owner.id + 1, name="forget", tool=FORGET, target="")
        assert other.decision is Decision.ASK  # grants are per user
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("risk:\n  write: maybe\n", "risk.write"),
        ("tools: [1, 2]\n", "tools"),
        ("surprise: true\n", "surprise"),
        ("risk:\n  read: allow\n  write: allow\n bad indent", "line"),
        ("- a list\n", "mapping"),
        ("version: 2\n", "version"),
        ("approvals:\n  expire_minutes: 0\n", "expire_minutes"),
    ],
)
def test_a_broken_policy_file_is_refused_with_where_to_fix_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Policy.parse(text, path=Path("/h/policy.yaml"))
    assert message in str(caught.value) and "policy.yaml" in str(caught.value)


def test_the_default_file_is_written_once_and_then_read(tmp_path: Path) -> None:
    policy = Policy.load(tmp_path, create=True)
    assert (tmp_path / POLICY_FILE).read_text() == DEFAULT_POLICY
    (tmp_path / POLICY_FILE).write_text("risk:\n  write: ask\n")
    again = Policy.load(tmp_path, create=True)
    assert again.rules.risk.write == "ask" and again.digest != policy.digest
    assert Policy.load(tmp_path / "absent").rules.risk.write == "allow"


def test_scopes_cover_public_hosts_with_a_wildcard_and_private_ones_only_by_name() -> None:
    scopes = DataScopes(sites=("*",), memory_kinds=("fact", "preference"), calendars=("work",))
    assert scopes.allows_site("example.com")
    assert not scopes.allows_site("127.0.0.1", 8080)
    assert not scopes.allows_site("nas.lan")
    named = DataScopes(sites=("*", "127.0.0.1:8080", "nas.lan"))
    assert named.allows_site("127.0.0.1", 8080) and not named.allows_site("127.0.0.1", 9090)
    assert named.allows_site("nas.lan", 443)
    assert scopes.allows_memory_kind("fact") and not scopes.allows_memory_kind("mood")
    assert scopes.memory_kinds_filter() == {"fact", "preference"}
    assert scopes.allows_calendar("Work") and not scopes.allows_calendar("family")
    assert DataScopes(sites=()).allows_site("example.com") is False
    for host in ("localhost", "10.1.2.3", "192.168.0.1", "169.254.1.1", "[::1]", "x.local"):
        assert is_private_host(host), host
    assert not is_private_host("8.8.8.8") and not is_private_host("example.com")


def test_rate_limiter_is_a_sliding_window_per_user() -> None:
    limiter = RateLimiter(limit=2, window=60)
    assert limiter.hit(1, now=0) is None and limiter.hit(1, now=1) is None
    refused = limiter.hit(1, now=2)
    assert refused is not None and refused.retry_after == pytest.approx(58)
    assert limiter.hit(2, now=2) is None  # another user has their own window
    assert limiter.hit(1, now=60.5) is None  # the first event left the window
    assert RateLimiter(limit=0, window=60).hit(1) is None  # 0 turns the limit off


def test_a_calendar_outside_the_scope_is_never_opened(tmp_path: Path) -> None:
    from agent.proactive.service import build_calendar
    from agent.settings import load_settings

    files = [tmp_path / "work.ics", tmp_path / "family.ics"]
    for f in files:
        f.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//t//EN\nEND:VCALENDAR\n")
    settings = load_settings(home=tmp_path, calendar_urls=[str(f) for f in files])
    scopes = Policy.parse("scopes:\n  calendars: [calendar2]\n").scopes
    calendar = build_calendar(settings, allow=scopes.allows_calendar)
    assert calendar is not None and [s.name for s in calendar.sources] == ["calendar2"]
    nothing = Policy.parse("scopes:\n  calendars: []\n").scopes
    assert build_calendar(settings, allow=nothing.allows_calendar) is None
