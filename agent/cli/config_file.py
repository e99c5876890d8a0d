"""Writing `dadang.toml` with every setting documented and commented out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agent.settings import Settings

_HEADER = """\
# Dadang configuration. Every key can also be set as DADANG_<KEY> in the environment,
# which wins over this file. Uncomment a line to change it; `dadang doctor` checks the result.
"""


_MCP_EXAMPLE = """\
# MCP servers whose tools the assistant may use (docs/mcp.md). Tables must stay at the end of
# the file: every key after a [[mcp_servers]] line belongs to that server.
#
# [[mcp_servers]]
# name = "files"                          # tools appear as files_<tool>
# command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/home/me/shared"]
# tool_risks = { write_file = "write" }   # per tool; else `risk`, else the server's hints
#
# [[mcp_servers]]
# name = "tracker"
# url = "https://mcp.example.com/mcp"     # streamable HTTP
# bearer_secret = "tracker_token"         # stored with: dadang secrets set tracker_token
# risk = "read"
# exclude = ["delete_issue"]
"""


def render_config(settings: Settings, *, chosen: dict[str, Any]) -> str:
    """A commented TOML file; keys in `chosen` are written active, the rest commented out."""
    lines = [_HEADER]
    for name, field in Settings.model_fields.items():
        if name in ("home", "mcp_servers"):
            continue
        doc = " ".join((field.description or "").split())
        lines.extend(f"# {line}" for line in textwrap.wrap(doc, 96))
        if name in chosen:
            lines.append(f"{name} = {_toml_value(chosen[name])}")
        else:
            value = getattr(settings, name)
            if value is None or isinstance(value, SecretStr):
                lines.append(f"# {name} = ")
            else:
                lines.append(f"# {name} = {_toml_value(value)}")
        lines.append("")
    lines.append(_MCP_EXAMPLE)
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def write_config(path: Path, text: str) -> None:
    """Write the config readable only by its owner (it may hold a bot token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
