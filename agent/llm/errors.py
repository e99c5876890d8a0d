"""Errors of the model client, translated from httpx at the edge.

ModelError (agent.errors.DadangError)
├── ModelUnavailable     connection refused, timeouts, 429/5xx after every retry: try later
├── ModelRequestError    the server refused the request (400/404: context too long, no model)
└── ModelResponseError   the server answered something that is not a completion
"""

from agent.errors import DadangError


class ModelError(DadangError):
    """The model endpoint failed."""


class ModelUnavailable(ModelError):
    """The model cannot answer now; the turn is kept and retried when it is back."""


class ModelRequestError(ModelError):
    """The server rejected this request; retrying the same request will not help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ModelResponseError(ModelError):
    """The server's answer could not be understood."""
