"""Files over Telegram: documents and photos in (`getFile` + download), documents out.

Telegram's cloud Bot API lets bots download files of at most 20 MB and upload at most 50 MB; a
self-hosted Bot API server (`DADANG_TELEGRAM_API_BASE`) lifts the download limit, so the size
check before a download applies to the official server only, and otherwise the server decides
(it answers "file is too big").
"""

from __future__ import annotations

from typing import Any, Final

from telegram import Bot, InputFile, Message
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError

from connectors.base import Attachment
from connectors.errors import AttachmentError, DeliveryError

_MB: Final = 1024 * 1024
BOT_DOWNLOAD_LIMIT: Final = 20 * _MB
"""Largest file a bot may download from api.telegram.org."""
MAX_CAPTION: Final = 1024
"""Caption limit, in UTF-16 code units as Telegram counts them."""
_DOWNLOAD_SECONDS: Final = 120.0
_UPLOAD_SECONDS: Final = 300.0
_OFFICIAL_API: Final = "https://api.telegram.org/"


def download_limit_for(api_base: str) -> int | None:
    """20 MB for the official Bot API; None (the server decides) for a self-hosted one."""
    return BOT_DOWNLOAD_LIMIT if api_base.startswith(_OFFICIAL_API) else None


def attachments_of(message: Message) -> list[Attachment]:
    """A document as itself, a photo as its largest size (`photo.jpg`); other media are not
    taken (they stay "unsupported" when there is no text)."""
    if message.document is not None:
        doc = message.document
        return [
            Attachment(
                id=doc.file_id,
                name=doc.file_name or "document",
                mime=doc.mime_type or "application/octet-stream",
                size=doc.file_size,
            )
        ]
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return [
            Attachment(
                id=largest.file_id, name="photo.jpg", mime="image/jpeg", size=largest.file_size
            )
        ]
    return []


def _size(size: int) -> str:
    return f"{size / _MB:.1f} MB" if size >= _MB else f"{max(1, round(size / 1024))} KB"


def _too_big_for_bots(name: str, size: int | None) -> AttachmentError:
    what = f"{name} ({_size(size)})" if size else name
    return AttachmentError(
        f"{what} is too large: Telegram lets bots download files of at most 20 MB. Send a smaller "
        "file, or put it somewhere I can download it from and send me the link"
    )


def _check(name: str, size: int | None, *, max_bytes: int, limit: int | None) -> None:
    if size is None:
        return
    if limit is not None and size > limit:
        raise _too_big_for_bots(name, size)
    if size > max_bytes:
        raise AttachmentError(
            f"{name} ({_size(size)}) is larger than the {_size(max_bytes)} I can store for you "
            "right now (per-file limit or your storage quota)"
        )


async def download(bot: Bot, attachment: Attachment, *, max_bytes: int, limit: int | None) -> bytes:
    """The attachment's bytes: `getFile`, then the file URL.

    Raises:
        AttachmentError: too large, unknown to Telegram, or the download failed.
    """
    name = attachment.name
    _check(name, attachment.size, max_bytes=max_bytes, limit=limit)
    try:
        remote = await bot.get_file(attachment.id)
        _check(name, remote.file_size, max_bytes=max_bytes, limit=limit)
        data = await remote.download_as_bytearray(read_timeout=_DOWNLOAD_SECONDS)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise _too_big_for_bots(name, attachment.size) from exc
        raise AttachmentError(
            f"Telegram would not hand over {name} ({exc}); please send it again"
        ) from exc
    except (TelegramError, RuntimeError) as exc:  # RuntimeError: PTB got no file_path
        raise AttachmentError(
            f"Telegram did not deliver {name} ({exc}); please send it again"
        ) from exc
    if len(data) > max_bytes:
        _check(name, len(data), max_bytes=max_bytes, limit=None)
    return bytes(data)


def cut_caption(text: str, limit: int = MAX_CAPTION) -> str:
    """`text` shortened to `limit` UTF-16 code units (with an ellipsis when cut)."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    out, used = [], 0
    for char in text:
        units = len(char.encode("utf-16-le")) // 2
        if used + units > limit - 1:
            break
        out.append(char)
        used += units
    return "".join(out).rstrip() + "…"


async def upload(bot: Bot, chat_id: str, *, name: str, data: bytes, caption: str) -> str:
    """Send `data` as a document called `name`; returns the message id.

    Raises:
        DeliveryError: retryable for flood control and network faults, not for refusals.
    """
    try:
        target = int(chat_id)
    except ValueError:
        raise DeliveryError(f"{chat_id!r} is not a Telegram chat id", retryable=False) from None
    try:
        sent = await bot.send_document(
            chat_id=target,
            document=InputFile(data, filename=name),
            caption=cut_caption(caption) or None,
            read_timeout=_UPLOAD_SECONDS,
            write_timeout=_UPLOAD_SECONDS,
        )
    except TelegramError as exc:
        raise delivery_error(exc, what="the file") from exc
    return str(sent.message_id)


def delivery_error(exc: TelegramError, *, what: str) -> DeliveryError:
    """The outbox's view of a failed send: retry flood control and network faults only."""
    if isinstance(exc, RetryAfter):
        return DeliveryError(
            f"Telegram flood control: {exc}", retryable=True, retry_after=_seconds(exc.retry_after)
        )
    if isinstance(exc, BadRequest | Forbidden | InvalidToken):
        return DeliveryError(f"Telegram refused {what}: {exc}", retryable=False)
    return DeliveryError(f"Telegram unreachable: {exc}", retryable=True)


def _seconds(value: Any) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)
