"""Decode python-telegram-bot's requests and encode Bot API errors.

Why a module of its own: PTB 22 posts ``application/x-www-form-urlencoded`` bodies whose
list and object values are JSON strings (``reply_markup``, ``allowed_updates``,
``commands``, ``reply_parameters``), and ``multipart/form-data`` when it uploads a file
(see ``telegram/request/_requestparameter.py``). The fake must undo exactly that, with the
stdlib only: Starlette's form parser would need python-multipart, which Dadang does not use.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["JSON", "ApiError", "read_params"]

JSON = dict[str, Any]
_INT_KEYS = frozenset(
    [
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "user_id",
        "from_chat_id",
        "message_thread_id",
        "reply_to_message_id",
        "cache_time",
    ]
)
_TEXT_KEYS = frozenset(
    [
        "text",
        "caption",
        "callback_query_id",
        "inline_message_id",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "url",
        "file_id",
        "secret_token",
        "action",
        "parse_mode",
        "emoji",
        "business_connection_id",
        "message_effect_id",
    ]
)


class ApiError(Exception):
    """A Bot API failure: becomes ``{"ok": false, ...}`` with the same HTTP status."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def response(self) -> Response:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return JSONResponse(body, status_code=self.code)


def _coerce(key: str, value: Any) -> Any:
    """Undo PTB's form encoding: JSON-encoded objects/lists, ints and booleans."""
    if not isinstance(value, str) or key in _TEXT_KEYS:
        return value
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if key in _INT_KEYS and re.fullmatch(r"-?\d+", value):
        return int(value)
    return {"true": True, "false": False}.get(value, value)


def _parse_multipart(body: bytes, content_type: str) -> JSON:
    """Split ``multipart/form-data`` with the stdlib only (no python-multipart needed)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise ApiError(400, "Bad Request: can't parse multipart body")
    out: JSON = {}
    for part in body.split(b"--" + found.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'[;\s]name="([^"]*)"', headers)
        if name is None:
            continue
        filename = re.search(r'filename="([^"]*)"', headers)
        if filename is not None:
            mime = re.search(r"content-type:\s*([^\r\n]+)", headers, re.IGNORECASE)
            out[name.group(1)] = {
                "filename": unquote(filename.group(1)),
                "content": content,
                "mime_type": mime.group(1).strip() if mime else "application/octet-stream",
            }
        else:
            out[name.group(1)] = content.decode("utf-8")
    return out


async def read_params(request: Request) -> JSON:
    """The call's parameters from query string and body, decoded as Telegram would."""
    raw: JSON = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    body = await request.body()
    if body and ctype.startswith("application/json"):
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "Bad Request: can't parse JSON body") from exc
        raw.update(decoded if isinstance(decoded, dict) else {})
    elif body and ctype.startswith("multipart/form-data"):
        raw.update(_parse_multipart(body, ctype))
    elif body:
        raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return {key: _coerce(key, value) for key, value in raw.items()}
