"""Declarative HTTP tools: one YAML file per endpoint in `DADANG_HOME/tools/` (format: `spec`)."""

from automation.http_tools.loader import load_http_tools
from automation.http_tools.spec import HttpToolSpec
from automation.http_tools.tool import HttpTool, SecretResolver, build_tool

__all__ = ["HttpTool", "HttpToolSpec", "SecretResolver", "build_tool", "load_http_tools"]
