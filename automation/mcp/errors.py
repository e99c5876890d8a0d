"""What can go wrong with an MCP server, before `McpTool` turns it into a ToolError.

McpError
├── McpStartError      the server could not be started or reached (misconfiguration or down)
└── McpCallError       one call failed; the model hears the message
    ├── McpServerLost  the server died or the connection dropped (it is being restarted)
    └── McpCallTimeout the call took longer than the server's `timeout`
"""

from __future__ import annotations


class McpError(Exception):
    """Base of the MCP errors; the message is meant for the user or the model."""


class McpStartError(McpError):
    """Starting or reaching a server failed; the message says what to fix."""


class McpCallError(McpError):
    """A tool call failed at the protocol level (not an `isError` result)."""


class McpServerLost(McpCallError):
    """The server process exited or the HTTP session dropped; a restart is under way."""


class McpCallTimeout(McpCallError):
    """No answer within the configured `timeout`."""
