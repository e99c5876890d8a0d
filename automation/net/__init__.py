"""Guarded outbound HTTP: only to hosts a policy allows, never to addresses it did not name."""

from automation.net.errors import (
    ConnectFailed,
    NetworkError,
    NetworkRefused,
    NetworkTimeout,
    ResponseTooLarge,
)
from automation.net.guard import GuardedResponse, HostPolicy, ResponseHead, guarded_request

__all__ = [
    "ConnectFailed",
    "GuardedResponse",
    "HostPolicy",
    "NetworkError",
    "NetworkRefused",
    "NetworkTimeout",
    "ResponseHead",
    "ResponseTooLarge",
    "guarded_request",
]
