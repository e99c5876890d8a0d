"""Secrets at rest: site passwords and API tokens, encrypted per row with AES-256-GCM.

Each value is sealed with the row's owner and name as associated data, so a ciphertext copied
onto another row (another user, another name) does not decrypt. Keys form a keyring identified
by a short fingerprint stored with every row: rotation re-encrypts every row under a new key in
one transaction while the old key is still readable, so a crash half-way never strands a value.

Decrypted values are registered for log redaction the moment they exist in this process.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory.audit import AuditLog
from memory.db import Database
from memory.errors import StorageError
from memory.secret_models import Secret
from memory.types import utcnow

KEY_FILE = "secret.key"
_VERSION = b"\x01"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_REDACT: set[str] = set()


class SecretError(StorageError):
    """A secret cannot be stored or read; the message never contains a secret value."""


def redaction_values() -> frozenset[str]:
    """Secret values this process has handled; log filters replace them with `***`."""
    return frozenset(_REDACT)


def _remember_for_redaction(value: str) -> None:
    if len(value) >= 4:
        _REDACT.add(value)


def check_name(name: str) -> str:
    """A secret name: 1–100 characters of letters, digits, `_`, `.`, `-`.

    Raises:
        SecretError: invalid name.
    """
    if not 0 < len(name) <= 100 or not set(name) <= _NAME_CHARS:
        raise SecretError(
            f"invalid secret name {name!r}: use 1-100 letters, digits, '_', '.' or '-'"
        )
    return name


@dataclass(frozen=True)
class Key:
    """One AES-256 key and its fingerprint."""

    material: bytes

    @property
    def key_id(self) -> str:
        """First 12 hex digits of SHA-256 of the key: identifies it without revealing it."""
        return hashlib.sha256(self.material).hexdigest()[:12]

    @classmethod
    def parse(cls, text: str) -> Key:
        """A key from its URL-safe base64 text (44 characters).

        Raises:
            SecretError: not a 32-byte key in base64.
        """
        try:
            material = base64.urlsafe_b64decode(text.strip().encode())
        except (ValueError, TypeError):
            material = b""
        if len(material) != 32:
            raise SecretError(
                "DADANG_SECRET_KEY must be 32 bytes in URL-safe base64 (44 characters); "
                "generate one with `dadang secrets new-key`"
            )
        return cls(material)

    @classmethod
    def generate(cls) -> Key:
        """A fresh random key."""
        return cls(random.token_bytes(32))

    def text(self) -> str:
        """The key as URL-safe base64, for a key file or DADANG_SECRET_KEY."""
        return base64.urlsafe_b64encode(self.material).decode()


class Keyring:
    """The current key (for writing) plus older ones still accepted for reading."""

    def __init__(self, current: Key, older: Iterable[Key] = ()) -> None:
        self.current = current
        self._keys = {k.key_id: k for k in (*older, current)}

    def get(self, key_id: str) -> Key:
        """The key with this fingerprint.

        Raises:
            SecretError: no such key (the value was sealed with a key that is not configured).
        """
        key = self._keys.get(key_id)
        if key is None:
            raise SecretError(
                f"a secret is sealed with key {key_id}, which is not configured; set "
                "DADANG_SECRET_KEY (or restore the key file) to the key it was written with"
            )
        return key

    @classmethod
    def load(cls, home: Path, env_key: str | None) -> Keyring:
        """From DADANG_SECRET_KEY, else `$DADANG_HOME/secret.key` (created 0600 when missing).

        A `secret.key.new` left by an interrupted rotation is accepted for reading.
        """
        if env_key:
            current = Key.parse(env_key)
        else:
            path = home / KEY_FILE
            if not path.exists():
                home.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(Key.generate().text() + "\n")
            current = Key.parse(path.read_text())
        older = []
        pending = home / f"{KEY_FILE}.new"
        if pending.exists():
            older.append(Key.parse(pending.read_text()))
        return cls(current, older)


def seal(key: Key, *, user_id: int, name: str, value: str) -> bytes:
    """Encrypt `value` bound to (user, name)."""
    nonce = random.token_bytes(12)
    aad = f"{user_id}:{name}".encode()
    return _VERSION + nonce + AESGCM(key.material).encrypt(nonce, value.encode(), aad)


def unseal(key: Key, blob: bytes, *, user_id: int, name: str) -> str:
    """Decrypt a sealed value of (user, name).

    Raises:
        SecretError: wrong key, tampered ciphertext, or a value moved from another row.
    """
    if blob[:1] != _VERSION or len(blob) < 29:
        raise SecretError(f"secret {name!r} is not in a format this version can read")
    try:
        plain = AESGCM(key.material).decrypt(blob[1:13], blob[13:], f"{user_id}:{name}".encode())
    except InvalidTag:
        raise SecretError(
            f"secret {name!r} cannot be decrypted: wrong key, or the stored value was altered"
        ) from None
    value = plain.decode()
    _remember_for_redaction(value)
    return value


@dataclass(frozen=True, kw_only=True)
class SecretInfo:
    """What may be shown about a secret: never its value."""

    name: str
    key_id: str
    created_at: datetime
    updated_at: datetime


class SecretStore:
    """Secrets of users, scoped by user on every call."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring
        self.audit = AuditLog(db)
        """Where administrative actions on secrets are recorded (names only, never values)."""

    async def set(self, user_id: int, name: str, value: str) -> bool:
        """Store or replace a secret; True when it was new."""
        check_name(name)
        if not value:
            raise SecretError("a secret value cannot be empty")
        _remember_for_redaction(value)
        key = self._keyring.current
        blob = seal(key, user_id=user_id, name=name, value=value)
        now = utcnow()
        async with self._db.engine.begin() as conn:
            changed = await conn.execute(
                update(Secret)
                .where(Secret.user_id == user_id, Secret.name == name)
                .values(ciphertext=blob, key_id=key.key_id, updated_at=now)
            )
            if changed.rowcount:
                return False
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    insert(Secret).values(
                        user_id=user_id,
                        name=name,
                        ciphertext=blob,
                        key_id=key.key_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:  # created concurrently: replace it
            return await self.set(user_id, name, value)
        return True

    async def get(self, user_id: int, name: str) -> str:
        """The value of the user's secret (only tools read it; it never enters a prompt).

        Raises:
            SecretError: no such secret, or it cannot be decrypted.
        """
        query = select(Secret.ciphertext, Secret.key_id).where(
            Secret.user_id == user_id, Secret.name == check_name(name)
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise SecretError(f"no secret named {name!r}")
        blob, key_id = row
        return unseal(self._keyring.get(key_id), bytes(blob), user_id=user_id, name=name)

    async def names(self, user_id: int) -> list[SecretInfo]:
        """Names and dates of the user's secrets."""
        query = (
            select(Secret.name, Secret.key_id, Secret.created_at, Secret.updated_at)
            .where(Secret.user_id == user_id)
            .order_by(Secret.name)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [SecretInfo(name=n, key_id=k, created_at=c, updated_at=u) for n, k, c, u in rows]

    async def delete(self, user_id: int, name: str) -> bool:
        """Remove a secret; False when the user had none by that name."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                delete(Secret).where(Secret.user_id == user_id, Secret.name == check_name(name))
            )
        return bool(result.rowcount)

    async def reencrypt_all(self, new: Key) -> int:
        """Seal every secret under `new`, in one transaction; returns how many.

        Raises:
            SecretError: a value cannot be read with the configured keys (nothing is changed).
        """
        now = utcnow()
        async with self._db.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(Secret.id, Secret.user_id, Secret.name, Secret.ciphertext, Secret.key_id)
                )
            ).all()
            for ident, user_id, name, blob, key_id in rows:
                value = unseal(self._keyring.get(key_id), bytes(blob), user_id=user_id, name=name)
                await conn.execute(
                    update(Secret)
                    .where(Secret.id == ident)
                    .values(
                        ciphertext=seal(new, user_id=user_id, name=name, value=value),
                        key_id=new.key_id,
                        updated_at=now,
                    )
                )
        return len(rows)
