"""MCP servers as a tool source: each server's tools become `Tool`s with `source = "mcp:<name>"`.

Modules: `config` (the `[[mcp_servers]]` table), `transport` (stdio or HTTP, and failures in
words), `connection` (one server's session and restarts), `calls` (calls handed to the session's
task), `tool` (`McpTool`), `content` (results as text), `hub` (all servers together).
Nothing is re-exported here, so `agent.settings` can import `config` without loading the SDK.
"""
