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

from agent.graph.nodes import act, recall, respond, route_after_think, think
from agent.graph.state import TurnDeps, TurnState

TurnGraph = CompiledStateGraph[TurnState, TurnDeps, TurnState, TurnState]


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None) -> TurnGraph:
    """recall → think ⇄ act → respond, checkpointed per conversation thread."""
    graph = StateGraph(TurnState, context_schema=TurnDeps)
    graph.add_node("recall", recall)
    graph.add_node("think", think)
    graph.add_node("act", act)
    graph.add_node("respond", respond)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "think")
    graph.add_conditional_edges("think", route_after_think, {"act": "act", "respond": "respond"})
    graph.add_edge("act", "think")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)


def thread_id(conversation_id: int) -> str:
    """The LangGraph thread of a conversation."""
    return f"conversation-{conversation_id}"


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
