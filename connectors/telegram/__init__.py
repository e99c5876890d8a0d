"""Telegram connector on python-telegram-bot: long polling, safe rendering, typing indicator."""

from connectors.telegram.connector import TelegramConnector

__all__ = ["TelegramConnector"]
