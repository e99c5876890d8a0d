"""The human contract: which tool calls run, ask or are refused, and what the agent may read."""
