"""Telegram connector on python-telegram-bot: long polling, safe rendering, typing indicator."""

import os

# Opt in to PTB's future API now (durations as timedelta) instead of its deprecation warnings;
# the connector reads both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from connectors.telegram.connector import TelegramConnector

__all__ = ["TelegramConnector"]
