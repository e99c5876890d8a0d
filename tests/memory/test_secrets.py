"""Secrets at rest: sealed per row, scoped by user, rotatable, never printed or logged."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from agent.cli.logs import RedactSecrets
from memory.db import open_database
from memory.identities import IdentityStore
from memory.secrets import Key, Keyring, SecretError, SecretStore

VALUE = "correct horse battery staple 马上"


async def _two_users(url: str) -> tuple[int, int]:
    db = open_database(url)
    identities = IdentityStore(db)
    alice, bob = await identities.create_user("alice"), await identities.create_user("bob")
    await db.dispose()
    return alice, bob


async def test_values_are_sealed_scoped_and_bound_to_their_row(db_url: str, tmp_path: Path) -> None:
    alice, bob = await _two_users(db_url)
    db = open_database(db_url)
    store = SecretStore(db, Keyring.load(tmp_path, None))
    assert await store.set(alice, "bank.password", VALUE) is True
    assert await store.set(alice, "bank.password", VALUE + "!") is False  # replaced
    assert await store.get(alice, "bank.password") == VALUE + "!"
    with pytest.raises(SecretError, match="no secret named"):
        await store.get(bob, "bank.password")  # another user's secret does not exist for bob
    assert [s.name for s in await store.names(bob)] == []
    async with db.engine.connect() as conn:
        blob = (await conn.execute(text("SELECT ciphertext FROM secrets"))).scalar_one()
    assert VALUE.encode() not in bytes(blob) and b"horse" not in bytes(blob)
    # A ciphertext copied to another row (bob's) does not decrypt: (user, name) is sealed in.
    await store.set(bob, "bank.password", "placeholder")
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE secrets SET ciphertext = :b WHERE user_id = :u"), {"b": blob, "u": bob}
        )
    with pytest.raises(SecretError, match="cannot be decrypted") as caught:
        await store.get(bob, "bank.password")
    assert VALUE not in str(caught.value)
    assert await store.delete(alice, "bank.password") is True
    assert await store.delete(alice, "bank.password") is False
    await db.dispose()


async def test_wrong_key_and_bad_names_fail_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    from memory.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
    alice, _ = await _two_users(url)
    db = open_database(url)
    await SecretStore(db, Keyring(Key.generate())).set(alice, "token", VALUE)
    with pytest.raises(SecretError, match="not configured"):
        await SecretStore(db, Keyring(Key.generate())).get(alice, "token")
    with pytest.raises(SecretError, match="invalid secret name"):
        await SecretStore(db, Keyring(Key.generate())).set(alice, "a b", "x")
    with pytest.raises(SecretError, match="44 characters"):
        Key.parse("not-a-key")
    await db.dispose()


def test_key_file_is_created_private(tmp_path: Path) -> None:
    ring = Keyring.load(tmp_path, None)
    mode = stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode)
    assert mode == 0o600
    assert Keyring.load(tmp_path, None).current.key_id == ring.current.key_id


def _cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "secrets", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DADANG_HOME": str(home)},
    )


def test_cli_never_prints_values_and_rotation_keeps_them_readable(clean_environ: Path) -> None:
    assert _cli(clean_environ, "set", "api.token", stdin=VALUE + "\n").returncode == 0
    listed = _cli(clean_environ, "list")
    assert listed.stdout.startswith("api.token\t") and VALUE not in listed.stdout + listed.stderr
    old_id = listed.stdout.split("key ")[1].strip()
    # An interrupted rotation (new key written, database not yet re-encrypted) resumes cleanly.
    (clean_environ / "secret.key.new").write_text(Key.generate().text())
    rotated = _cli(clean_environ, "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    assert not (clean_environ / "secret.key.new").exists()
    new_id = _cli(clean_environ, "list").stdout.split("key ")[1].strip()
    assert new_id != old_id

    async def read() -> str:
        db = open_database(f"sqlite:///{clean_environ / 'dadang.db'}")
        try:
            return await SecretStore(db, Keyring.load(clean_environ, None)).get(1, "api.token")
        finally:
            await db.dispose()

    assert asyncio.run(read()) == VALUE
    bad = _cli(clean_environ, "set", "bad name", stdin="x")
    assert bad.returncode == 1 and "invalid secret name" in bad.stderr


def test_handled_secret_values_are_redacted_from_logs(tmp_path: Path) -> None:
    from memory.secrets import seal, unseal

    key = Key.generate()
    value = unseal(key, seal(key, user_id=1, name="n", value="s3cr3t-value"), user_id=1, name="n")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "login with %s", (value,), None)
    RedactSecrets([]).filter(record)
    assert record.getMessage() == "login with ***"


def test_rotating_a_key_from_the_environment_follows_the_printed_procedure(
    clean_environ: Path,
) -> None:
    old = Key.generate().text()

    def cli(*args: str, key: str | None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DADANG_HOME": str(clean_environ)}
        env.pop("DADANG_SECRET_KEY", None)
        if key is not None:
            env["DADANG_SECRET_KEY"] = key
        return subprocess.run(
            [sys.executable, "-m", "agent.cli.main", "secrets", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )

    assert cli("set", "api.token", key=old, stdin=VALUE + "\n").returncode == 0
    refused = cli("rotate-key", key=old)
    assert refused.returncode == 2
    assert str(clean_environ / "secret.key") in refused.stderr.replace("\n", "")
    # The procedure the message gives: the current key into the file, rotate without the variable,
    # then the new key from the file into the variable.
    (clean_environ / "secret.key").write_text(old + "\n")
    assert cli("rotate-key", key=None).returncode == 0
    new = (clean_environ / "secret.key").read_text().strip()
    assert new != old
    listed = cli("list", key=new)
    assert listed.returncode == 0 and listed.stdout.startswith("api.token\t")

    async def read() -> str:
        db = open_database(f"sqlite:///{clean_environ / 'dadang.db'}")
        try:
            return await SecretStore(db, Keyring.load(clean_environ, new)).get(1, "api.token")
        finally:
            await db.dispose()

    assert asyncio.run(read()) == VALUE
