"""The LangGraph turn: recall → think ⇄ act → respond."""

from agent.graph.builder import build_graph
from agent.graph.state import TurnDeps, TurnState

__all__ = ["TurnDeps", "TurnState", "build_graph"]
