"""Errors of the agent layer.

DadangError
├── ConfigError            misconfiguration: the message names the setting, env var and fix
├── ModelError             the LLM endpoint failed (see agent.llm.errors for the subtree)
└── TurnAborted            a turn was cancelled by shutdown; the message stays pending
"""


class DadangError(Exception):
    """Base class for errors Dadang reports to users and operators."""


class ConfigError(DadangError):
    """Settings are missing or invalid; the message says how to fix them."""


class TurnAborted(DadangError):
    """A turn stopped before it finished (shutdown); the inbound message stays queued."""
