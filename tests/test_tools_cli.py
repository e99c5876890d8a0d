"""`dadang tools list`: the agent's tools as the service registers them, with their policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli.main import app
from agent.policy.rules import DEFAULT_POLICY, POLICY_FILE
from tests.test_pairing_admin import cli


def listed(*extra: str) -> dict[str, dict[str, object]]:
    result = cli("tools", "list", "--json", *extra)
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}


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


def write_tool_files(home: Path) -> None:
    (home / "tools").mkdir(parents=True, exist_ok=True)
    (home / "tools" / "office.yaml").write_text(
        "name: office_rooms\ndescription: List rooms.\nmethod: GET\n"
        "url: http://127.0.0.1:9/rooms\n",
        encoding="utf-8",
    )
    (home / "tools" / "broken.yaml").write_text("name: Bad Name\nmethod: FETCH\n", encoding="utf-8")


def test_http_tool_files_are_listed_and_a_broken_file_is_named_on_stderr(
    clean_environ: Path,
) -> None:
    write_tool_files(clean_environ)
    tools = listed()
    assert tools["office_rooms"]["source"] == "http:office"
    assert tools["office_rooms"]["risk"] == "read"
    result = CliRunner().invoke(app, ["tools", "list"])
    assert result.exit_code == 0
    assert "broken.yaml" in result.stderr and "not loaded" in result.stderr
    assert "office_rooms" in result.stdout


def test_enable_disable_reset_switch_tools_per_user_and_are_audited(clean_environ: Path) -> None:
    write_tool_files(clean_environ)
    owner_view = listed("--user", "owner")
    assert owner_view["office_rooms"]["enabled"] is True
    assert owner_view["current_time"]["enabled"] is True

    assert cli("tools", "disable", "office_*", "--user", "owner").exit_code == 0
    assert listed("--user", "owner")["office_rooms"]["enabled"] is False
    assert cli("tools", "enable", "office_rooms", "--user", "owner").exit_code == 0
    assert listed("--user", "owner")["office_rooms"]["enabled"] is True  # exact name wins
    assert cli("tools", "reset", "office_rooms", "--user", "owner").exit_code == 0
    assert listed("--user", "owner")["office_rooms"]["enabled"] is False
    missing = cli("tools", "reset", "office_rooms", "--user", "owner")
    assert missing.exit_code == 1 and "no switch" in missing.output

    table = cli("tools", "list", "--user", "owner").stdout.splitlines()
    assert table[0].split() == ["tool", "source", "risk", "policy", "enabled", "reads"]
    audit = cli("audit", "show", "--limit", "20").output
    assert "tool_disabled" in audit and "tool_enabled" in audit and "tool_access_reset" in audit
