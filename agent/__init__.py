"""The agent: settings, runtime, LangGraph graph, LLM client and the CLI that wires them."""

__version__ = "0.1.0"
