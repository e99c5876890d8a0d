"""Secrets for tools, by name: the key is loaded the first time a tool needs one.

Why lazily: most turns call no authenticated tool, and an instance without secrets should not
need a key file just to start. The values never leave the tool that asked (see `memory.secrets`).
"""

from __future__ import annotations

import asyncio

from agent.settings import Settings
from memory.db import Database
from memory.secrets import Keyring, SecretError, SecretStore


class StoredSecrets:
    """`(user_id, name) -> value`, the resolver HTTP and MCP tools are given."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._store: SecretStore | None = None

    async def __call__(self, user_id: int, name: str) -> str | None:
        """The user's secret `name`, or None when it is not set or cannot be decrypted."""
        try:
            if self._store is None:
                env = self._settings.secret_key
                keyring = await asyncio.to_thread(
                    Keyring.load, self._settings.home, env.get_secret_value() if env else None
                )
                self._store = SecretStore(self._db, keyring)
            return await self._store.get(user_id, name)
        except SecretError:
            return None
