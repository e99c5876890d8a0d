"""The tool registry as the service builds it, shared by `dadang run`, `policy check` and
`tools list` so the CLI shows exactly the tools the agent has."""

from __future__ import annotations

from agent.settings import Settings
from automation.tools import ToolRegistry
from automation.tools.builtin import register as register_builtin_tools
from automation.tools.calendar_tools import register_calendar_tools
from automation.tools.scopes import DataScopes


def calendar_names(settings: Settings) -> list[str]:
    """The names calendars get (`calendar1`, … in the order of DADANG_CALENDAR_URLS)."""
    return [f"calendar{i + 1}" for i in range(len(settings.calendar_urls))]


def build_tools(settings: Settings, scopes: DataScopes) -> ToolRegistry:
    """Built-in tools, plus the calendar tools when a configured calendar is in scope."""
    registry = ToolRegistry()
    register_builtin_tools(registry)
    if any(scopes.allows_calendar(name) for name in calendar_names(settings)):
        register_calendar_tools(registry)
    return registry
