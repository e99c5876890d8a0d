"""A minimal HTTP/1.1 JSON echo server for benchmarks, run as its own process so its CPU does
not share the measured process's GIL.

    python -m bench.echo_server PORT_FILE

Writes the port it listens on (127.0.0.1, OS-assigned) to PORT_FILE, then serves until killed.
Every request gets `{"path": …, "query": …, "items": [...]}` back with keep-alive.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

_ITEMS = [
    {"id": f"fb-{i:03d}", "text": "投影仪偶尔没有信号 / projector flickers"} for i in range(5)
]


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if length:
                await reader.readexactly(length)
            path, _, query = target.partition("?")
            body = json.dumps({"path": path, "query": query, "items": _ITEMS}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port_file: Path) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    port_file.write_text(str(port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
