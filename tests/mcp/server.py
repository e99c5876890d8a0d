"""A real MCP server for the tests, built with the SDK's `MCPServer` (v1's FastMCP).

    python tests/mcp/server.py stdio
    python tests/mcp/server.py http --port 8123 [--token SECRET]

Over HTTP it listens on 127.0.0.1 at `/mcp`; with `--token` every request must carry
`Authorization: Bearer <token>` (401 otherwise), so a test can see the configured secret arrive.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

server: MCPServer[Any] = MCPServer("dadang-test", log_level="WARNING")

# The smallest valid PNG (1x1 transparent pixel).
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Say the text back.")
def echo(text: str) -> str:
    return text


@server.tool(description="Wait some seconds, then answer.")
async def slow(seconds: float) -> str:
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="Die in the middle of the call.")
def crash() -> str:
    sys.stdout.flush()
    os._exit(1)


@server.tool(description="Always fails (isError result).")
def fail() -> str:
    raise ToolError("the fail tool always fails")


@server.tool(description="Look, do not touch.", annotations=ToolAnnotations(read_only_hint=True))
def peek() -> str:
    return "nothing changed"


@server.tool(description="Delete everything.", annotations=ToolAnnotations(destructive_hint=True))
def wipe() -> str:
    return "wiped"


@server.tool(name="Get-Item.v2", description="A name that needs sanitising.")
def get_item(item_id: str) -> str:
    return f"item {item_id}"


@server.tool(description="A picture and a caption.", structured_output=False)
def picture() -> list[Any]:
    return ["a pixel", Image(data=PIXEL, format="png")]


@server.tool(description="The server's process id.")
def pid() -> int:
    return os.getpid()


@server.tool(description="A long answer.")
def big(chars: int) -> str:
    return "x" * chars


def _with_bearer(app: Any, token: str) -> Any:
    """ASGI middleware: 401 unless `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    options = parser.parse_args()
    if options.transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app: Any = server.streamable_http_app()
    if options.token:
        app = _with_bearer(app, options.token)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
