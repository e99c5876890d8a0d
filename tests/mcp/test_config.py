"""`[[mcp_servers]]` in dadang.toml and DADANG_MCP_SERVERS, and the names tools get."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.cli.config_file import render_config
from agent.errors import ConfigError
from agent.settings import load_settings
from automation.mcp.config import McpServerConfig
from automation.mcp.tool import tool_name
from automation.tools.base import RiskLevel

TOML = """
llm_model = "qwen"

[[mcp_servers]]
name = "files"
command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/shared"]
env = { LOG = "quiet" }
tool_risks = { write_file = "write", delete = "irreversible" }
exclude = ["move_file"]
timeout = 10

[[mcp_servers]]
name = "tracker"
url = "https://mcp.example.com/mcp"
headers = { X-Team = "home" }
bearer_secret = "tracker_token"
risk = "read"
enabled = false
"""


def test_settings_read_mcp_servers_tables_from_dadang_toml(clean_environ: Path) -> None:
    clean_environ.mkdir(parents=True)
    (clean_environ / "dadang.toml").write_text(TOML)
    files, tracker = load_settings().mcp_servers
    assert files.transport == "stdio" and files.command is not None
    assert files.command[-1] == "/srv/shared" and files.env == {"LOG": "quiet"}
    assert files.tool_risks == {"write_file": RiskLevel.WRITE, "delete": RiskLevel.IRREVERSIBLE}
    assert files.timeout == 10.0 and files.startup_timeout == 20.0 and files.risk is None
    assert not files.offers("move_file") and files.offers("read_file")
    assert tracker.transport == "http" and tracker.headers == {"X-Team": "home"}
    assert tracker.bearer_secret == "tracker_token" and tracker.risk is RiskLevel.READ
    assert tracker.enabled is False


def test_the_environment_variable_takes_json_and_wins(
    clean_environ: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environ.mkdir(parents=True)
    (clean_environ / "dadang.toml").write_text(TOML)
    monkeypatch.setenv(
        "DADANG_MCP_SERVERS", json.dumps([{"name": "env-srv", "url": "http://127.0.0.1:9/mcp"}])
    )
    (only,) = load_settings().mcp_servers
    assert only.name == "env-srv" and only.transport == "http"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('name = "Files"\ncommand = ["x"]', "mcp_servers.0.name"),
        ('name = "a"', "set either `command` (stdio) or `url` (HTTP)"),
        ('name = "a"\ncommand = ["x"]\nurl = "http://h/mcp"', "set either `command`"),
        ('name = "a"\ncommand = ["x"]\nbearer_secret = "t"', "need a `url`"),
        ('name = "a"\ncommand = ["x"]\nrisk = "dangerous"', "mcp_servers.0.risk"),
        ('name = "a"\ncommand = ["x"]\ntimout = 5', "mcp_servers.0.timout"),
        ('name = "a"\ncommand = ["x"]\n\n[[mcp_servers]]\nname = "a"\nurl = "http://h"', "unique"),
    ],
)
def test_a_broken_table_is_a_config_error_naming_the_problem(
    clean_environ: Path, table: str, problem: str
) -> None:
    clean_environ.mkdir(parents=True)
    (clean_environ / "dadang.toml").write_text(f"[[mcp_servers]]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert problem in str(caught.value)


def test_the_written_config_documents_mcp_servers_and_the_example_works(
    clean_environ: Path,
) -> None:
    text = render_config(load_settings(), chosen={})
    assert "# [[mcp_servers]]" in text and "mcp_servers =" not in text
    example = text[text.index("# [[mcp_servers]]") :]
    uncommented = "\n".join(line.removeprefix("# ") for line in example.splitlines())
    clean_environ.mkdir(parents=True)
    (clean_environ / "dadang.toml").write_text(text + "\n" + uncommented)
    names = [server.name for server in load_settings().mcp_servers]
    assert names == ["files", "tracker"]


def test_tool_names_are_sanitised_bounded_and_unique() -> None:
    assert tool_name("docs-srv", "Get-Item.v2") == "docs_srv_get_item_v2"
    long = tool_name("srv", "a" * 100)
    assert len(long) == 64 and re.fullmatch(r"[a-z0-9_]+", long)
    assert long == tool_name("srv", "a" * 100)  # stable from one start to the next
    clash = tool_name("srv", "get_item", taken={"srv_get_item"})
    assert clash != "srv_get_item" and clash.startswith("srv_get_item_") and len(clash) <= 64


def test_risk_comes_from_configuration_before_the_servers_hints() -> None:
    config = McpServerConfig(name="s", command=["x"], tool_risks={"t": RiskLevel.PAYMENT})
    assert config.risk_for("t", read_only=True, destructive=False) is RiskLevel.PAYMENT
    assert config.risk_for("u", read_only=True, destructive=True) is RiskLevel.READ
    assert config.risk_for("u", read_only=False, destructive=True) is RiskLevel.IRREVERSIBLE
    assert config.risk_for("u", read_only=False, destructive=False) is None
    server_wide = config.model_copy(update={"risk": RiskLevel.WRITE})
    assert server_wide.risk_for("u", read_only=True, destructive=False) is RiskLevel.WRITE


def test_configs_are_strict_about_types() -> None:
    with pytest.raises(ValidationError):
        McpServerConfig.model_validate({"name": "s", "command": ["x"], "timeout": "30"})
    with pytest.raises(ValidationError):
        McpServerConfig.model_validate({"name": "s", "command": "npx server"})
