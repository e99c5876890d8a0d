"""Telegram via python-telegram-bot, long polling with acknowledge-after-persist.

PTB's own Updater confirms updates on its next poll whether or not a handler finished, so a crash
could lose a message. This connector polls itself: each update is handed to the runtime, which
persists it, and only then is the offset advanced (which is what acknowledges it to Telegram).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ApplicationBuilder

from connectors.base import (
    Attachment,
    Callback,
    Connector,
    InboundMessage,
    InboundSink,
    OutboundMessage,
)
from connectors.errors import ConnectorConfigError, DeliveryError
from connectors.telegram import files
from connectors.telegram.render import to_html

log = logging.getLogger(__name__)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
"""Replies never unfurl links: a preview is a request Telegram makes to a URL the reply holds,
which a planted instruction could fill with the user's data (exfiltration without a tool)."""

_COMMANDS = [
    BotCommand("start", "Start talking to your assistant / 开始"),
    BotCommand("help", "What I can do / 帮助"),
]
_ALLOWED_UPDATES = ["message", "callback_query"]
# Rendering HTML can lengthen a part (entities); split below the 4096 limit to leave room.
_SPLIT_AT = 3800
_QUOTE_CHARS = 300


class TelegramConnector(Connector):
    """The Telegram channel; chat ids and user ids are the Bot API's, as strings."""

    id = "telegram"
    max_message_chars = _SPLIT_AT

    def __init__(
        self, *, token: str, api_base: str, poll_timeout: int = 30, pool_size: int = 128
    ) -> None:
        file_base = api_base.rstrip("/")
        file_base = (
            file_base[: -len("/bot")] + "/file/bot" if file_base.endswith("/bot") else file_base
        )
        self._app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(token)
            .base_url(api_base)
            .base_file_url(file_base)
            .updater(None)
            .connection_pool_size(pool_size)
            .pool_timeout(30.0)
            .get_updates_read_timeout(10.0)
            .build()
        )
        self._poll_timeout = poll_timeout
        self._download_limit = files.download_limit_for(api_base)
        self._task: asyncio.Task[None] | None = None
        self._offset: int | None = None
        self._receiving = asyncio.Event()
        self._receiving.set()
        self._healthy = False
        self._last_error: str | None = None

    @property
    def bot_username(self) -> str | None:
        """The bot's @username once started."""
        return self._app.bot.username if self._healthy else None

    async def start(self, sink: InboundSink) -> None:
        """Check the token (getMe), drop any webhook, register commands, start polling.

        Raises:
            ConnectorConfigError: Telegram refused the token.
        """
        try:
            await self._app.initialize()
            await self._app.bot.delete_webhook()
            await self._app.bot.set_my_commands(_COMMANDS)
        except InvalidToken:
            await self._app.bot.shutdown()
            # `from None`: PTB's message repeats the token, which must not reach a log.
            raise ConnectorConfigError(
                "Telegram refused the bot token; check DADANG_TELEGRAM_TOKEN (from @BotFather) "
                "and run `dadang doctor`"
            ) from None
        except TelegramError as exc:
            await self._app.bot.shutdown()
            raise ConnectorConfigError(
                f"cannot reach the Telegram Bot API at DADANG_TELEGRAM_API_BASE: {exc}"
            ) from exc
        self._healthy = True
        self._task = asyncio.create_task(self._poll(sink), name="telegram-poll")

    async def pause(self) -> None:
        """Stop polling; updates not yet acknowledged will be delivered again next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._offset is not None and self._healthy:
            # Confirm what was persisted so a clean restart does not see it again (it would be
            # deduplicated anyway).
            with contextlib.suppress(TelegramError):
                await self._app.bot._post(
                    "getUpdates", {"offset": self._offset, "timeout": 0, "limit": 1}
                )
            self._offset = None

    async def stop(self) -> None:
        """Stop polling and close the HTTP connections."""
        await self.pause()
        with contextlib.suppress(TelegramError, RuntimeError):
            await self._app.shutdown()

    def status(self) -> dict[str, object]:
        """Polling health for /healthz."""
        return {
            "ok": self._healthy,
            "error": self._last_error,
            "receiving": self._receiving.is_set(),
        }

    def receive(self, active: bool) -> None:
        """Poll only while `active`: Telegram allows one long poll per bot token, so of several
        replicas only the leader polls (the others would end each other's polls with 409)."""
        if active and not self._receiving.is_set():
            log.info("Telegram: this process now receives updates")
            self._receiving.set()
        elif not active and self._receiving.is_set():
            log.info("Telegram: another process receives updates; sending only")
            self._receiving.clear()

    async def _poll(self, sink: InboundSink) -> None:
        backoff = 1.0
        while True:
            await self._receiving.wait()
            try:
                raw_updates = await self._app.bot._post(
                    "getUpdates",
                    {
                        "offset": self._offset,
                        "timeout": self._poll_timeout,
                        "allowed_updates": _ALLOWED_UPDATES,
                    },
                    read_timeout=self._poll_timeout + 10,
                )
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except (InvalidToken, Forbidden) as exc:
                self._healthy, self._last_error = False, f"token refused: {exc}"
                log.error("Telegram refused the token while polling; check DADANG_TELEGRAM_TOKEN")
                await asyncio.sleep(60)
                continue
            except TelegramError as exc:
                self._last_error = str(exc)
                log.warning("Telegram polling failed (%s); retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = 1.0
            self._healthy, self._last_error = True, None
            for raw in raw_updates if isinstance(raw_updates, list) else []:
                await self._deliver(raw, sink)

    async def _deliver(self, raw: Any, sink: InboundSink) -> None:
        """Hand one raw update to the runtime; advance the offset only once it is persisted."""
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if not isinstance(update_id, int):
            log.warning("dropping a Telegram update without update_id: %.200r", raw)
            return
        try:
            update = Update.de_json(raw, self._app.bot)
        except Exception:  # garbage from the wire must not stall the queue
            log.warning("dropping an unreadable Telegram update %s", update_id, exc_info=True)
            self._offset = update_id + 1
            return
        inbound = None
        if update is not None and update.callback_query is not None:
            inbound = _normalise_callback(update)
            if inbound is None:
                with contextlib.suppress(TelegramError):
                    await update.callback_query.answer()
        elif update is not None:
            inbound = _normalise(update)
        if inbound is not None:
            while True:
                try:
                    admission = await sink(inbound)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Not persisted (database down?): keep the update unconfirmed and retry, so
                    # Telegram keeps it for us.
                    log.exception("could not store Telegram update %s; retrying", update_id)
                    await asyncio.sleep(2.0)
            log.debug("update %s: %s", update_id, admission)
        self._offset = update_id + 1

    async def send(self, message: OutboundMessage) -> str:
        """Send one part as HTML, falling back to plain text if Telegram cannot parse it."""
        markup = None
        if message.buttons:
            markup = InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                    for row in message.buttons
                ]
            )
        reply = (
            ReplyParameters(message_id=int(message.reply_to), allow_sending_without_reply=True)
            if message.reply_to and message.reply_to.isdigit()
            else None
        )
        rendered = to_html(message.text)
        try:
            try:
                sent = await self._app.bot.send_message(
                    chat_id=int(message.chat_id),
                    text=rendered if len(rendered) <= 4096 else message.text,
                    parse_mode=ParseMode.HTML if len(rendered) <= 4096 else None,
                    reply_markup=markup,
                    reply_parameters=reply,
                    link_preview_options=_NO_PREVIEW,
                )
            except BadRequest as exc:
                if "parse entities" not in str(exc).lower():
                    raise
                sent = await self._app.bot.send_message(
                    chat_id=int(message.chat_id),
                    text=message.text,
                    reply_markup=markup,
                    reply_parameters=reply,
                    link_preview_options=_NO_PREVIEW,
                )
        except RetryAfter as exc:
            raise DeliveryError(
                f"Telegram flood control: {exc}",
                retryable=True,
                retry_after=_seconds(exc.retry_after),
            ) from exc
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest):
                raise DeliveryError(
                    f"Telegram refused the message: {exc}", retryable=False
                ) from exc
            raise DeliveryError(f"Telegram unreachable: {exc}", retryable=True) from exc
        except (Forbidden, InvalidToken) as exc:
            raise DeliveryError(f"Telegram refused delivery: {exc}", retryable=False) from exc
        except TelegramError as exc:
            raise DeliveryError(f"Telegram error: {exc}", retryable=True) from exc
        return str(sent.message_id)

    async def fetch_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """`getFile` and download (bots: at most 20 MB from the official Bot API)."""
        return await files.download(
            self._app.bot, attachment, max_bytes=max_bytes, limit=self._download_limit
        )

    async def send_file(self, chat_id: str, *, name: str, data: bytes, caption: str = "") -> str:
        """`sendDocument` with the file name; the caption is cut to Telegram's 1024."""
        return await files.upload(self._app.bot, chat_id, name=name, data=data, caption=caption)

    async def edit(self, chat_id: str, message_id: str, text: str) -> None:
        """Replace a message's text; without reply_markup Telegram drops its inline keyboard."""
        try:
            await self._app.bot.edit_message_text(
                chat_id=int(chat_id), message_id=int(message_id), text=text
            )
        except (TelegramError, ValueError) as exc:
            log.info("could not edit message %s in %s: %s", message_id, chat_id, exc)

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Stop the button's spinner, showing `text` as a toast."""
        try:
            await self._app.bot.answer_callback_query(callback_id, text=text)
        except TelegramError as exc:
            log.info("could not answer callback %s: %s", callback_id, exc)

    async def typing(self, chat_id: str) -> None:
        """Send the `typing` chat action; failures are irrelevant to the turn."""
        with contextlib.suppress(TelegramError, ValueError):
            await self._app.bot.send_chat_action(chat_id=int(chat_id), action="typing")


def _seconds(value: Any) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)


def _normalise_callback(update: Update) -> InboundMessage | None:
    query = update.callback_query
    if query is None or query.from_user is None or not query.data:
        return None
    carrier = query.message
    chat_id = carrier.chat.id if carrier is not None else query.from_user.id
    return InboundMessage(
        channel="telegram",
        external_user_id=str(query.from_user.id),
        chat_id=str(chat_id),
        text="",
        channel_message_id=None,
        display_name=query.from_user.full_name,
        language_code=query.from_user.language_code,
        callback=Callback(
            id=str(query.id),
            data=str(query.data),
            message_id=str(carrier.message_id) if carrier is not None else None,
        ),
    )


def _normalise(update: Update) -> InboundMessage | None:
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    user = message.from_user
    text = message.text or message.caption or ""
    attachments = files.attachments_of(message)
    command = None
    if text.startswith("/"):
        word = text.split(maxsplit=1)[0][1:]
        command = word.split("@", 1)[0].lower() or None
    elif not text and not attachments:
        command = "unsupported"
    quoted = message.reply_to_message
    if command is None and quoted is not None and (quoted.text or quoted.caption):
        # The user answered a specific message; the model needs to know which one.
        excerpt = " ".join((quoted.text or quoted.caption or "").split())[:_QUOTE_CHARS]
        text = f"[replying to: {excerpt}]\n{text}"
    return InboundMessage(
        channel="telegram",
        external_user_id=str(user.id),
        chat_id=str(message.chat.id),
        text=text,
        channel_message_id=f"{message.chat.id}:{message.message_id}",
        display_name=user.full_name,
        language_code=user.language_code,
        command=command,
        attachments=attachments,
    )
