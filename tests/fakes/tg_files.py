"""Users sending documents and photos to the fake Bot API, as Telegram delivers them.

Why a module of its own: ``telegram.py`` drives text updates; this part models Telegram's file
objects. A ``document`` carries ``file_id``, ``file_unique_id``, ``file_name``, ``mime_type``
and (usually) ``file_size``; a ``photo`` is a list of ``PhotoSize`` from smallest to largest.
The bytes are kept under a ``file_path`` that ``getFile`` returns and ``/file/bot<token>/<path>``
serves, like the real server. ``declared_size`` lets a test claim a size (e.g. 25 MB) without
allocating it: ``getFile`` then answers "file is too big", as Telegram does above 20 MB.
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

from .tg_wire import JSON

__all__ = ["DOWNLOAD_LIMIT", "MediaUpdates"]

DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""Largest file getFile hands to a bot on the cloud Bot API."""
_ids = itertools.count(1)


class MediaUpdates:
    """Mixed into ``FakeTelegram``: ``push_document`` and ``push_photo``."""

    _lock: Any
    _files: dict[str, JSON]
    _messages: dict[tuple[int | str, int], JSON]

    def store_file(
        self,
        content: bytes,
        *,
        file_name: str | None,
        mime_type: str,
        declared_size: int | None = None,
        folder: str = "documents",
    ) -> str:
        """Keep ``content`` as a file Telegram knows; returns its ``file_id``."""
        n = next(_ids)
        file_id = f"BQACAgIAAxkBAAI{n:06d}"
        suffix = "." + file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else ""
        with self._lock:
            self._files[file_id] = {
                "filename": file_name or "file",
                "content": content,
                "mime_type": mime_type,
                "file_path": f"{folder}/file_{n}{suffix}",
                "file_size": len(content) if declared_size is None else declared_size,
                "file_unique_id": f"AgADuq{n:04d}",
            }
        return file_id

    def push_document(
        self,
        user_id: int,
        content: bytes,
        *,
        file_name: str | None = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        declared_size: int | None = None,
        size_in_message: bool = True,
        **sender: Any,
    ) -> JSON:
        """Enqueue a message with a ``document`` (and ``caption``); returns the update."""
        file_id = self.store_file(
            content, file_name=file_name, mime_type=mime_type, declared_size=declared_size
        )
        stored = self._files[file_id]
        document: JSON = {
            "file_id": file_id,
            "file_unique_id": stored["file_unique_id"],
            "mime_type": mime_type,
        }
        if file_name is not None:
            document["file_name"] = file_name
        if size_in_message:
            document["file_size"] = stored["file_size"]
        return self._push_media(user_id, {"document": document}, caption=caption, **sender)

    def push_photo(
        self, user_id: int, content: bytes, *, caption: str | None = None, **sender: Any
    ) -> JSON:
        """Enqueue a photo: a 90×67 thumbnail and the full picture (``content``)."""
        sizes = []
        for width, height, data in ((90, 67, content[:64]), (1280, 960, content)):
            file_id = self.store_file(data, file_name=None, mime_type="image/jpeg", folder="photos")
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": self._files[file_id]["file_unique_id"],
                    "width": width,
                    "height": height,
                    "file_size": len(data),
                }
            )
        return self._push_media(user_id, {"photo": sizes}, caption=caption, **sender)

    def _push_media(
        self,
        user_id: int,
        body: JSON,
        *,
        caption: str | None,
        chat_id: int | None = None,
        first_name: str = "User",
        language_code: str = "en",
    ) -> JSON:
        user: JSON = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        cid = user_id if chat_id is None else chat_id
        with self._lock:
            message: JSON = {
                "message_id": self._new_message_id(cid),  # type: ignore[attr-defined]
                "from": user,
                "chat": copy.deepcopy(self._chat(cid, user)),  # type: ignore[attr-defined]
                "date": int(time.time()),
                **body,
            }
            if caption:
                message["caption"] = caption
            self._messages[(cid, message["message_id"])] = message
        return self._enqueue({"message": copy.deepcopy(message)})  # type: ignore[attr-defined]
