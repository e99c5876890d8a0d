"""Tools the agent can call, all behind one protocol and one registry."""

from automation.tools.base import RiskLevel, Tool, ToolContext, ToolError, ToolRegistry

__all__ = ["RiskLevel", "Tool", "ToolContext", "ToolError", "ToolRegistry"]
