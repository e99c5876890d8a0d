"""Why a guarded request produced no response; every message says what happened and what to change.

    NetworkError            a guarded request failed (the message is meant for the model and user)
    ├── NetworkRefused      the guard said no: scheme, policy, private or metadata address, redirect
    ├── ConnectFailed       the name did not resolve or the connection failed (may work later)
    ├── NetworkTimeout      no complete answer within the time limit (may work later)
    └── ResponseTooLarge    the body is longer than the byte limit

None of them derives from `automation.tools.ToolError`: tools translate them at their edge, so this
package does not depend on the tools that use it.
"""

from __future__ import annotations


class NetworkError(Exception):
    """A guarded request failed; the text says why."""


class NetworkRefused(NetworkError):
    """The guard refused the request or one of its redirects before sending it."""


class ConnectFailed(NetworkError):
    """The host name was not found or the connection failed; retrying later may help."""


class NetworkTimeout(NetworkError):
    """The whole exchange (lookups, redirects and body) took longer than allowed."""


class ResponseTooLarge(NetworkError):
    """The response body is longer than the caller's limit; it was not read to the end."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(f"{url}: response larger than {_size(limit)}; not read")
        self.url = url
        self.limit = limit


def _size(limit: int) -> str:
    mb = 1024 * 1024
    return f"{limit // mb} MB" if limit % mb == 0 else f"{limit} bytes"
