"""What a call acts on, as approvals and the audit name it (`Tool.target`).

Best effort on raw arguments: targets are taken before validation, so these never raise.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def url_host(arguments: dict[str, Any], key: str = "url") -> str:
    """`host`, or `host:port` for a non-default port (a different service), of a URL argument."""
    try:
        parts = urlsplit(str(arguments.get(key, "")))
        host = (parts.hostname or "").lower()
        port = parts.port
    except (AttributeError, TypeError, ValueError):
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{host}:{port}" if host and port is not None and port != default else host


def file_ref(arguments: dict[str, Any], key: str = "file_id") -> str:
    """`file #<id>` for a stored-file argument."""
    file_id = arguments.get(key)
    return f"file #{file_id}" if isinstance(file_id, int | str) and str(file_id) else ""
