"""Building and compiling the turn graph, and its checkpointer in the project's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import URL

from agent.graph.gate import gate
from agent.graph.nodes import act, recall, respond, route_after_think, think
from agent.graph.state import TurnDeps, TurnState

TurnGraph = CompiledStateGraph[TurnState, TurnDeps, TurnState, TurnState]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> TurnGraph:
    """recall → think ⇄ (gate → act) → respond; `gate` may pause the turn for an approval."""
    graph = StateGraph(TurnState, context_schema=TurnDeps)
    graph.add_node("recall", recall)
    graph.add_node("think", think)
    graph.add_node("gate", gate)
    graph.add_node("act", act)
    graph.add_node("respond", respond)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "think")
    graph.add_conditional_edges("think", route_after_think, {"act": "gate", "respond": "respond"})
    graph.add_edge("gate", "act")
    graph.add_edge("act", "think")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)


def thread_id(message_id: int) -> str:
    """The LangGraph thread of one turn (the inbound message it answers).

    A turn per thread, not a conversation per thread: a turn paused on an approval keeps its
    checkpoint while later messages of the same conversation are answered on their own threads.
    History lives in the database, so no turn needs another's checkpoint.
    """
    return f"turn-{message_id}"


@asynccontextmanager
async def open_checkpointer(url: URL) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """A LangGraph saver in the same database as everything else (SQLite file or PostgreSQL)."""
    if url.get_backend_name() == "sqlite":
        path = url.database or ":memory:"
        async with aiosqlite.connect(path) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=10000")
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            yield saver
        return
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=8,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    ) as pool:
        saver_pg = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await saver_pg.setup()
        yield saver_pg
