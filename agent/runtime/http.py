"""The HTTP app under uvicorn: `GET /healthz` (JSON status), `GET /metrics` (Prometheus) and
the approvals API (agent/runtime/approvals_api.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.runtime.approvals_api import approval_routes

if TYPE_CHECKING:
    from agent.runtime.service import Runtime

log = logging.getLogger(__name__)


async def health(runtime: Runtime) -> dict[str, Any]:
    """Status of the database, the model and each connector; `status` is ok or degraded."""
    database: dict[str, Any] = {"ok": True}
    try:
        async with asyncio.timeout(3), runtime.stores.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure here means "database down" to the operator
        database = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    llm = {
        "ok": runtime.health.is_up,
        "base_url": runtime.settings.llm_base_url,
        "model": runtime.health.model,
        "error": runtime.health.reason,
    }
    connectors: dict[str, Any] = {}
    for cid, connector in runtime.connectors.items():
        if cid in runtime.connector_errors:
            connectors[cid] = {"ok": False, "error": runtime.connector_errors[cid]}
        else:
            connectors[cid] = connector.status()
    ok = database["ok"] and llm["ok"] and all(c.get("ok") for c in connectors.values())
    return {
        "status": "ok" if ok else "degraded",
        "database": database,
        "llm": llm,
        "connectors": connectors,
        "queue_depth": runtime.queue_depth,
        "scheduler": {"leading": runtime.proactive.leading},
    }


def create_app(runtime: Runtime) -> Starlette:
    """The Starlette app bound to one runtime."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse(await health(runtime))

    async def metrics(_: Request) -> Response:
        runtime.metrics.queue_depth.set(runtime.queue_depth)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/metrics", metrics), *approval_routes(runtime)]
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `dadang run` owns SIGTERM for graceful shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """Runs the app inside the runtime's event loop."""

    def __init__(self, runtime: Runtime, *, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_app(runtime),
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = _Server(config)
        self._host, self._port = host, port
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the HTTP server is not listening")

    async def start(self) -> None:
        """Bind and serve in the background.

        Raises:
            OSError: the port is taken (the message names DADANG_HTTP_PORT).
        """
        # Binding here (not in uvicorn) turns "port taken" into an OSError instead of sys.exit.
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise OSError(
                f"cannot listen on {self._host}:{self._port} ({exc.strerror}); set "
                "DADANG_HTTP_PORT to a free port"
            ) from exc
        sock.listen(128)
        sock.setblocking(False)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await self._task
