"""The state and Bot API methods behind ``FakeTelegram``.

Why split from ``telegram.py``: this part is Telegram's behaviour (message ids per chat,
long polling with offsets, edit/delete rules, error texts); ``telegram.py`` is the HTTP
plumbing and the test-driving API. Every method takes the decoded parameters and returns
the ``result`` or raises ``ApiError``; all state is guarded by ``self._lock``.
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

from .server import Notifier
from .tg_files import DOWNLOAD_LIMIT
from .tg_markup import MAX_CAPTION, MAX_TEXT, parse_text, utf16_len
from .tg_wire import JSON, ApiError

__all__ = ["BotApi"]

_UPDATE_TYPES = frozenset(
    [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "inline_query",
        "chosen_inline_result",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "message_reaction",
        "poll",
        "poll_answer",
    ]
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class BotApi:
    """Telegram's side of the conversation: chats, messages, updates, commands, files."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-token",
        username: str = "dadang_test_bot",
        first_name: str = "Dadang",
    ) -> None:
        self.token = token
        head = token.split(":", 1)[0]
        self.bot_user: JSON = {
            "id": int(head) if head.isdigit() else 123456,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
        }
        self.sent: list[JSON] = []
        """Outgoing messages (sendMessage, sendDocument, editMessageText), oldest first."""
        self.calls: list[tuple[str, JSON]] = []
        self.conflicts = 0
        """getUpdates polls ended by a newer poll (two bot instances polling one token)."""
        """Every API call as (method, decoded params), failed ones included."""
        self.commands: list[JSON] = []
        self.webhook_url = ""
        self.confirmed_offset = 0
        self._signal = Notifier()
        self._lock = self._signal.lock
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._last_update_id = 0
        self._message_ids: dict[int | str, int] = {}
        self._messages: dict[tuple[int | str, int], JSON] = {}
        self._chats: dict[int | str, JSON] = {}
        self._callback_ids: set[str] = set()
        self.callback_answers: list[JSON] = []
        """answerCallbackQuery calls as received (the notice a press showed)."""
        self._files: dict[str, JSON] = {}
        self._failures: dict[str, list[ApiError]] = {}
        self._allowed: set[str] | None = None
        self._poll_generation = 0
        self._methods: dict[str, Any] = {
            name[3:].lower(): getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    def _chat(self, chat_id: int | str, user: JSON | None = None) -> JSON:
        if chat_id not in self._chats:
            # Lenient: a positive id never seen is taken as a private chat (Telegram would
            # answer "chat not found"), so a bot may message a known user id first.
            if isinstance(chat_id, int) and chat_id > 0:
                chat = {
                    "id": chat_id,
                    "type": "private",
                    "first_name": (user or {}).get("first_name", "User"),
                }
                if user and user.get("username"):
                    chat["username"] = user["username"]
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                chat = {"id": chat_id, "type": kind, "title": "Test group"}
            self._chats[chat_id] = chat
        return self._chats[chat_id]

    def _new_message_id(self, chat_id: int | str, wanted: int | None = None) -> int:
        message_id = wanted if wanted is not None else self._message_ids.get(chat_id, 0) + 1
        self._message_ids[chat_id] = max(message_id, self._message_ids.get(chat_id, 0))
        return message_id

    def _m_getMe(self, p: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_logOut(self, p: JSON) -> bool:
        return True

    _m_close = _m_logOut

    def _m_setWebhook(self, p: JSON) -> bool:
        self.webhook_url = str(p.get("url") or "")
        return True

    def _m_deleteWebhook(self, p: JSON) -> bool:
        with self._lock:
            self.webhook_url = ""
            if p.get("drop_pending_updates") is True:
                self._updates.clear()
        return True

    def _m_getWebhookInfo(self, p: JSON) -> JSON:
        with self._lock:
            return {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }

    def _deliverable(self) -> list[JSON]:
        allowed = self._allowed
        return [
            u
            for u in self._updates
            if allowed is None or not (_UPDATE_TYPES & u.keys()) or allowed & u.keys()
        ]

    async def _m_getUpdates(self, p: JSON) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = int(p.get("offset") or 0), max(1, min(100, int(p.get("limit") or 100)))
        timeout = float(p.get("timeout") or 0)
        with self._lock:
            if isinstance(p.get("allowed_updates"), list):
                self._allowed = set(p["allowed_updates"]) or None
            if offset > 0:
                self._updates = [
                    u
                    for u in self._updates
                    if not (isinstance(u["update_id"], int) and u["update_id"] < offset)
                ]
                self.confirmed_offset = max(self.confirmed_offset, offset)
            elif offset < 0:
                self._updates = self._updates[offset:]
            self._poll_generation += 1
            generation = self._poll_generation
        self._signal.notify()  # an older poll still waiting must now end with 409

        def ready() -> bool:
            return self._poll_generation != generation or bool(self._deliverable())

        if timeout > 0:
            await self._signal.wait_async(ready, timeout)
        with self._lock:
            if self._poll_generation != generation:
                self.conflicts += 1
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            return copy.deepcopy(self._deliverable()[:limit])

    def _chat_id(self, p: JSON) -> int | str:
        chat_id = p.get("chat_id")
        if isinstance(chat_id, int) or (isinstance(chat_id, str) and chat_id):
            return chat_id
        raise ApiError(400, "Bad Request: chat_id is empty")

    def _message_key(self, p: JSON) -> tuple[int | str, int]:
        message_id = p.get("message_id")
        if not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        return self._chat_id(p), message_id

    def _check(
        self, text: Any, parse_mode: Any, *, limit: int = MAX_TEXT, caption: bool = False
    ) -> str:
        plain, problem = parse_text(
            str(text or ""), parse_mode if isinstance(parse_mode, str) else None
        )
        if problem is not None:
            raise ApiError(400, f"Bad Request: can't parse entities: {problem}")
        if utf16_len(plain) > limit:
            raise ApiError(
                400,
                "Bad Request: message caption is too long"
                if caption
                else "Bad Request: message is too long",
            )
        if not caption and not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        return plain

    def _record(self, method: str, p: JSON, message: JSON, extra: JSON | None = None) -> None:
        self.sent.append(
            {
                "method": method,
                "chat_id": message["chat"]["id"],
                "text": p.get("text", p.get("caption")),
                "parse_mode": p.get("parse_mode"),
                "reply_markup": p.get("reply_markup"),
                "message_id": message["message_id"],
                "params": p,
                **(extra or {}),
            }
        )

    def _outgoing(self, p: JSON, body: JSON) -> JSON:
        """Build and store a bot message in ``chat_id`` (``body`` holds text/document/...)."""
        cid = self._chat_id(p)
        message: JSON = {
            "message_id": 0,
            "from": self.bot_user,
            "chat": copy.deepcopy(self._chat(cid)),
            "date": int(time.time()),
            **body,
        }
        reply = p.get("reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        reply_to = reply_to or p.get("reply_to_message_id")
        if reply_to is not None:
            if (cid, reply_to) in self._messages:
                message["reply_to_message"] = copy.deepcopy(self._messages[(cid, reply_to)])
            elif not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                raise ApiError(400, "Bad Request: message to be replied not found")
        markup = p.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        message["message_id"] = self._new_message_id(cid)
        self._messages[(cid, message["message_id"])] = message
        return message

    def _m_sendMessage(self, p: JSON) -> JSON:
        plain = self._check(p.get("text"), p.get("parse_mode"))
        with self._lock:
            message = self._outgoing(p, {"text": plain})
            self._record("sendMessage", p, message)
            return copy.deepcopy(message)

    def _m_editMessageText(self, p: JSON) -> JSON | bool:
        plain = self._check(p.get("text"), p.get("parse_mode"))
        if p.get("inline_message_id"):
            return True
        key = self._message_key(p)
        with self._lock:
            message = self._messages.get(key)
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            if message["from"]["id"] != self.bot_user["id"]:
                raise ApiError(400, "Bad Request: message can't be edited")
            markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
            if message.get("text") == plain and message.get("reply_markup") == markup:
                raise ApiError(400, NOT_MODIFIED)
            message.update(text=plain, edit_date=int(time.time()))
            message.pop("reply_markup", None)
            if markup and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            self._record("editMessageText", p, message)
            return copy.deepcopy(message)

    def _m_deleteMessage(self, p: JSON) -> bool:
        with self._lock:
            if self._messages.pop(self._message_key(p), None) is None:
                raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _m_sendChatAction(self, p: JSON) -> bool:
        self._chat_id(p)
        if not p.get("action"):
            raise ApiError(400, "Bad Request: action is empty")
        return True

    def _m_answerCallbackQuery(self, p: JSON) -> bool:
        with self._lock:
            if str(p.get("callback_query_id")) not in self._callback_ids:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired "
                    "or query ID is invalid",
                )
            self.callback_answers.append(dict(p))
        return True

    def _m_setMyCommands(self, p: JSON) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        self.commands = commands
        return True

    def _m_deleteMyCommands(self, p: JSON) -> bool:
        self.commands = []
        return True

    def _m_getMyCommands(self, p: JSON) -> list[JSON]:
        return list(self.commands)

    def _m_sendDocument(self, p: JSON) -> JSON:
        caption = self._check(
            p.get("caption"), p.get("parse_mode"), limit=MAX_CAPTION, caption=True
        )
        document = p.get("document")
        if not document:
            raise ApiError(400, "Bad Request: there is no document in the request")
        with self._lock:
            # A str is a file_id (or URL): resend the stored bytes if the fake has them.
            upload = document if isinstance(document, dict) else self._files.get(document)
            upload = upload or {"filename": "file", "content": b"", "mime_type": "text/plain"}
            file_id = (
                document if isinstance(document, str) else f"BQACAgIAAx{len(self._files) + 1:08d}"
            )
            meta = {
                "file_id": file_id,
                "file_unique_id": f"AgAD{len(self._files) + 1}",
                "file_name": upload["filename"],
                "mime_type": upload["mime_type"],
                "file_size": len(upload["content"]),
            }
            self._files.setdefault(
                file_id, {**upload, "file_path": f"documents/file_{len(self._files)}"}
            )
            body: JSON = {"document": meta, **({"caption": caption} if caption else {})}
            message = self._outgoing(p, body)
            self._record("sendDocument", p, message, {"document": upload})
            return copy.deepcopy(message)

    def _m_getFile(self, p: JSON) -> JSON:
        with self._lock:
            stored = self._files.get(str(p.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        size = stored.get("file_size", len(stored["content"]))
        if size > DOWNLOAD_LIMIT:
            # The cloud Bot API hands bots files of at most 20 MB.
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": p["file_id"],
            "file_unique_id": stored.get("file_unique_id", "AgAD" + str(p["file_id"])[-4:]),
            "file_size": size,
            "file_path": stored["file_path"],
        }
