"""`dadang tools list`: the agent's tools as the service registers them, with their policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.policy.rules import DEFAULT_POLICY, POLICY_FILE
from tests.test_pairing_admin import cli


def listed(*extra: str) -> dict[str, dict[str, object]]:
    result = cli("tools", "list", "--json", *extra)
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in map(json.loads, result.output.splitlines())}


def test_every_builtin_tool_is_listed_with_source_risk_and_policy(clean_environ: Path) -> None:
    tools = listed()
    assert tools["memory_forget"] == {
        "name": "memory_forget",
        "source": "builtin",
        "risk": "irreversible",
        "reads": [],
        "untrusted_output": False,
        "policy": "ask",
        "rule": "risk.irreversible",
        "description": tools["memory_forget"]["description"],
    }
    assert tools["web_read"]["untrusted_output"] is True and tools["web_read"]["reads"] == ["web"]
    assert "calendar_events" not in tools  # no calendar configured
    table = cli("tools", "list").output.splitlines()
    assert table[0].split() == ["tool", "source", "risk", "policy", "reads"]
    assert len(table) == len(tools) + 1


@pytest.mark.parametrize(("scope", "shown"), [('["*"]', True), ("[]", False)])
def test_calendar_tools_follow_configuration_and_scope(
    clean_environ: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scope: str, shown: bool
) -> None:
    ics = tmp_path / "work.ics"
    ics.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//t//EN\nEND:VCALENDAR\n")
    monkeypatch.setenv("DADANG_CALENDAR_URLS", str(ics))
    clean_environ.mkdir(parents=True, exist_ok=True)
    (clean_environ / POLICY_FILE).write_text(
        DEFAULT_POLICY.replace('  calendars: ["*"]', f"  calendars: {scope}")
    )
    assert ("calendar_events" in listed()) is shown
