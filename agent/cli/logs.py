"""Logging set-up that keeps secrets out of every log line.

httpx logs each request URL at INFO, and Telegram puts the bot token in the URL; a filter on the
root handler replaces every configured secret with `***` before anything is written.
"""

from __future__ import annotations

import logging

from agent.settings import Settings
from memory.secrets import redaction_values


class RedactSecrets(logging.Filter):
    """Replaces known secret values in formatted log records.

    Known: the configured tokens, plus every stored secret this process has decrypted or set.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        known = [*self._secrets, *redaction_values()]
        if not known:
            return True
        message = record.getMessage()
        redacted = message
        for secret in known:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once for a CLI command."""
    secrets = [
        s.get_secret_value()
        for s in (
            settings.telegram_token,
            settings.llm_api_key,
            settings.embeddings_api_key,
            settings.calendar_password,
            settings.secret_key,
        )
        if s is not None
    ]
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # Request lines are noise at INFO and carry tokens in URLs.
    for noisy in ("httpx", "httpcore", "telegram", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
