"""`python -m examples.office_api --host 127.0.0.1 --port 8088 [--token TOKEN] [--today DATE]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from datetime import date

from . import serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.office_api",
        description="Serve the demo office API (feedback, meeting rooms, bookings).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8088, help="port; 0 picks a free one")
    parser.add_argument(
        "--token",
        default=os.environ.get("OFFICE_API_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (default: $OFFICE_API_TOKEN, else no auth)",
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="seed data relative to this YYYY-MM-DD instead of the current date",
    )
    return parser


async def _main(args: argparse.Namespace) -> None:
    async with serve(host=args.host, port=args.port, token=args.token, today=args.today) as srv:
        auth = "bearer token required" if srv.token else "no auth"
        print(f"office API on {srv.url} ({auth}); spec at {srv.url}/openapi.yaml", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # exit cleanly, even when backgrounded
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main() -> None:
    """Parse arguments and serve until SIGINT or SIGTERM."""
    args = _parser().parse_args()
    try:
        asyncio.run(_main(args))
    except OSError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
