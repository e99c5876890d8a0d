"""A Telegram Bot API server as python-telegram-bot 22.x calls it, on a loopback port.

Why a real HTTP fake instead of mocking PTB: Dadang's polling loop, retries and escaping
must run unchanged. PTB posts form-encoded bodies (multipart for uploads; lists and objects
as JSON strings) to ``{base_url}{token}/{method}`` and reads ``{"ok": ..., "result": ...}``
or ``{"ok": false, "error_code", "description", "parameters"}``. This fake answers the same
way, long-polls ``getUpdates`` like Telegram (offset confirms, unconfirmed updates come
again, a newer poll ends an older one with 409), and checks texts with ``tg_markup``.

Tests drive it from any thread or loop: ``push_*`` enqueue updates (``push_document`` and
``push_photo`` from ``tg_files``) and wake a long poll at once; ``sent``/``calls`` record traffic; ``wait_sent`` waits for the bot's replies.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Awaitable
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .server import ThreadedServer
from .tg_api import BotApi
from .tg_files import MediaUpdates
from .tg_markup import utf16_len
from .tg_wire import JSON, ApiError, read_params

__all__ = ["ApiError", "FakeTelegram"]


class FakeTelegram(MediaUpdates, BotApi):
    """The Bot API on ``api_base``; see the module docstring for the behaviour it models."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-token",
        username: str = "dadang_test_bot",
        first_name: str = "Dadang",
        port: int = 0,
    ) -> None:
        super().__init__(token=token, username=username, first_name=first_name)
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
            ]
        )
        self.server = ThreadedServer(app, name="fake-telegram", port=port)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        """Pass to ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``."""
        return self.server.base + "/bot"

    @property
    def file_base(self) -> str:
        """Pass to ``base_file_url(...)``."""
        return self.server.base + "/file/bot"

    def start(self) -> FakeTelegram:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- test driving -------------------------------------------------------------------
    def _enqueue(self, update: JSON) -> JSON:
        with self._lock:
            if "update_id" not in update:
                update["update_id"] = max(next(self._update_ids), self._last_update_id + 1)
            if isinstance(update["update_id"], int):
                self._last_update_id = max(self._last_update_id, update["update_id"])
            self._updates.append(update)
        self._signal.notify()
        return copy.deepcopy(update)

    def push_message(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        first_name: str = "User",
        username: str | None = None,
        language_code: str = "en",
        message_id: int | None = None,
        reply_to_message_id: int | None = None,
        entities: list[JSON] | None = None,
    ) -> JSON:
        """Enqueue a user's text message; returns the update as getUpdates will deliver it."""
        user: JSON = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        if username:
            user["username"] = username
        cid = user_id if chat_id is None else chat_id
        with self._lock:
            message: JSON = {
                "message_id": self._new_message_id(cid, message_id),
                "from": user,
                "chat": copy.deepcopy(self._chat(cid, user)),
                "date": int(time.time()),
                "text": text,
            }
            if entities:
                message["entities"] = entities
            if reply_to_message_id is not None and (cid, reply_to_message_id) in self._messages:
                message["reply_to_message"] = copy.deepcopy(
                    self._messages[(cid, reply_to_message_id)]
                )
            self._messages[(cid, message["message_id"])] = message
        return self._enqueue({"message": copy.deepcopy(message)})

    def push_command(self, user_id: int, command: str, **kwargs: Any) -> JSON:
        """Like ``push_message`` with a ``bot_command`` entity over the first word ("/start")."""
        length = utf16_len(command.split(maxsplit=1)[0]) if command.strip() else 0
        entities = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push_message(user_id, command, entities=entities, **kwargs)

    def push_callback(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int,
        chat_id: int | None = None,
        first_name: str = "User",
        username: str | None = None,
        language_code: str = "en",
    ) -> JSON:
        """Enqueue an inline-button press on message ``message_id`` of the chat."""
        user: JSON = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        if username:
            user["username"] = username
        cid = user_id if chat_id is None else chat_id
        with self._lock:
            query_id = str(next(self._update_ids) * 7919 + 10**15)
            self._callback_ids.add(query_id)
            message = self._messages.get((cid, message_id)) or {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat(cid, user),
                "date": int(time.time()),
                "text": "",
            }
            query = {
                "id": query_id,
                "from": user,
                "message": copy.deepcopy(message),
                "chat_instance": str(abs(hash(cid))),
                "data": data,
            }
        return self._enqueue({"callback_query": query})

    def push_update(self, raw: JSON) -> JSON:
        """Enqueue any dict (garbage-input tests); ``update_id`` is assigned if missing."""
        return self._enqueue(copy.deepcopy(raw))

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def sent_to(self, chat_id: int | str | None = None, *, method: str | None = None) -> list[JSON]:
        """Recorded outgoing messages, optionally only one chat's and one method's."""
        with self._lock:
            return [
                dict(s)
                for s in self.sent
                if (chat_id is None or s["chat_id"] == chat_id)
                and (method is None or s["method"] == method)
            ]

    async def wait_sent(
        self,
        *,
        chat_id: int | str | None = None,
        count: int = 1,
        timeout: float = 10.0,
        method: str | None = None,
    ) -> list[JSON]:
        """Await ``count`` sent messages (to ``chat_id``); a TimeoutError lists those sent."""
        if not await self._signal.wait_async(
            lambda: len(self.sent_to(chat_id, method=method)) >= count, timeout
        ):
            raise TimeoutError(
                f"expected {count} sent to {chat_id}, got: {self.sent_to(chat_id, method=method)}"
            )
        return self.sent_to(chat_id, method=method)

    def wait_sent_sync(
        self,
        *,
        chat_id: int | str | None = None,
        count: int = 1,
        timeout: float = 10.0,
        method: str | None = None,
    ) -> list[JSON]:
        """Blocking twin of ``wait_sent`` for tests without an event loop."""
        if not self._signal.wait_sync(
            lambda: len(self.sent_to(chat_id, method=method)) >= count, timeout
        ):
            raise TimeoutError(
                f"expected {count} sent to {chat_id}, got: {self.sent_to(chat_id, method=method)}"
            )
        return self.sent_to(chat_id, method=method)

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str = "Too Many Requests: retry after 1",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Fail the next ``times`` calls of ``method`` (429 carries ``parameters.retry_after``)."""
        params: JSON | None = None
        if error_code == 429:
            if retry_after is None:
                found = re.search(r"retry after (\d+)", description)
                retry_after = int(found.group(1)) if found else 1
            elif description == "Too Many Requests: retry after 1":
                description = f"Too Many Requests: retry after {retry_after}"
            params = {"retry_after": retry_after}
        with self._lock:
            self._failures.setdefault(method.lower(), []).extend(
                ApiError(error_code, description, params) for _ in range(times)
            )

    # -- HTTP ---------------------------------------------------------------------------
    async def _dispatch(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        method = request.path_params["method"]
        try:
            params = await read_params(request)
            with self._lock:
                self.calls.append((method, params))
                queued = self._failures.get(method.lower())
                if queued:
                    raise queued.pop(0)
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            result = handler(params)
            if isinstance(result, Awaitable):
                result = await result
        except ApiError as exc:
            return exc.response()
        finally:
            self._signal.notify()
        return JSONResponse({"ok": True, "result": result})

    async def _download(self, request: Request) -> Response:
        with self._lock:
            stored = next(
                (f for f in self._files.values() if f["file_path"] == request.path_params["path"]),
                None,
            )
        if request.path_params["token"] != self.token or stored is None:
            return ApiError(404, "Not Found").response()
        return Response(stored["content"], media_type=stored["mime_type"])
