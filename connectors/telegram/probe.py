"""A token check for `dadang doctor`, kept here so `telegram.error` never leaves `connectors/`."""

from __future__ import annotations

import contextlib

from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from connectors.errors import ConnectorConfigError


async def bot_username(*, token: str, api_base: str) -> str:
    """The bot's @username, proving the token works.

    Raises:
        ConnectorConfigError: the token was refused or the Bot API is unreachable.
    """
    bot = Bot(token, base_url=api_base)
    try:
        me = await bot.get_me()
    except InvalidToken:
        raise ConnectorConfigError(
            "the token was refused; check DADANG_TELEGRAM_TOKEN (from @BotFather)"
        ) from None
    except TelegramError as exc:
        raise ConnectorConfigError(f"the Bot API is unreachable: {exc}") from exc
    finally:
        with contextlib.suppress(TelegramError, RuntimeError):
            await bot.shutdown()
    return me.username or ""
