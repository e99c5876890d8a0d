"""Secrets stay secret: a stored secret, the bot token and the model's API key never show up.

A secret is stored the way a user does it (`dadang secrets set`, in another process), the
service decrypts it, then runs turns that try to spill it: a site that echoes it, a failing
fetch whose error carries it, a failing model call, and a compromised model writing it into a
memory. Every place it could end up is searched afterwards: log records (raw, at DEBUG for every
logger) and the service's log output, each request body the model received, the audit export,
every message sent to Telegram, and exception texts.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.cli.logs import setup_logging
from agent.settings import Settings
from memory.audit import AuditLog
from memory.secrets import Keyring, SecretStore, redaction_values
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM, Reply
from tests.fakes.vllm_script import JSON
from tests.policy.injection_helpers import Site, tool_results

OWNER = 3003
NAME = "SITE_TOKEN"
REDACTED = "[redacted secret]"
# Loggers `setup_logging` keeps at WARNING because their request lines carry URLs (and Telegram
# puts the bot token in its URLs); here they log at DEBUG, the worst case.
NOISY = ("httpx", "httpcore", "telegram", "apscheduler", "aiosqlite", "alembic")
WIRE_LOGGERS = ("httpx|", "httpcore.", "telegram.", "aiosqlite|")


class SecretLeak(AssertionError):
    """A secret value was found where it must never be."""


@pytest.fixture
def values() -> dict[str, str]:
    """Distinctive values, new for every test (redaction remembers values per process)."""
    tag = uuid.uuid4().hex[:12]
    return {
        "secret": f"sk-LEAK-5e1f{tag}",
        "token": f"918273:TG-LEAK-{tag}",
        "llm_key": f"llm-LEAK-{tag}",
    }


@pytest.fixture
def leaky_env(
    clean_environ: Path, monkeypatch: pytest.MonkeyPatch, values: dict[str, str]
) -> dict[str, str]:
    monkeypatch.setenv("DADANG_TELEGRAM_TOKEN", values["token"])
    monkeypatch.setenv("DADANG_LLM_API_KEY", values["llm_key"])
    return values


@pytest.fixture
def leaky_llm(values: dict[str, str]) -> Iterator[FakeVLLM]:
    """Answers only requests that carry the API key as a bearer token, like `vllm --api-key`."""
    with FakeVLLM(api_key=values["llm_key"]) as server:
        yield server


@pytest.fixture
def leaky_tg(values: dict[str, str]) -> Iterator[FakeTelegram]:
    with FakeTelegram(token=values["token"]) as server:
        yield server


def dadang(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as the user runs it (stdin is not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )


@contextmanager
def production_logging(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> Iterator[io.StringIO]:
    """`dadang run`'s logging, at DEBUG for every logger; yields what the service writes.

    caplog's handler goes first, so it keeps each record as it was emitted: the production
    handler's redaction filter rewrites records in place.
    """
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    caplog.set_level(logging.DEBUG)
    for name in NOISY:
        caplog.set_level(logging.DEBUG, logger=name)  # restored by caplog afterwards
    setup_logging(settings)
    [handler] = root.handlers
    output = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(output)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.handler.setFormatter(logging.Formatter("%(name)s|%(levelname)s|%(message)s"))
    root.handlers[:] = [caplog.handler, handler]
    try:
        yield output
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def found_in(text: str, values: dict[str, str], *, what: str) -> None:
    for name, value in values.items():
        if value in text:
            at = text.index(value)
            raise SecretLeak(f"the {name} is in {what}: …{text[max(0, at - 200) : at + 60]}…")


def repeat_tool_result(body: JSON) -> Reply:
    """An obedient model: it says back whatever its last tool returned."""
    tools = [m for m in body["messages"] if m.get("role") == "tool"]
    return vllm.text(str(tools[-1]["content"]) if tools else "nothing to repeat")


async def turn(tg: FakeTelegram, text: str, *, replies: int) -> dict[str, Any]:
    tg.push_message(OWNER, text)
    return (await tg.wait_sent(chat_id=OWNER, method="sendMessage", count=replies))[-1]


async def test_secrets_stay_out_of_logs_prompts_audit_and_chat(
    leaky_env: dict[str, str],
    leaky_llm: FakeVLLM,
    leaky_tg: FakeTelegram,
    service_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    values, home = leaky_env, Path(os.environ["DADANG_HOME"])
    secret = values["secret"]
    stored = dadang("secrets", "set", NAME, "--user", "owner", stdin=secret + "\n")
    assert stored.returncode == 0, stored.stderr
    found_in(stored.stdout + stored.stderr, values, what="`dadang secrets set` output")

    with Site() as site:
        home.mkdir(parents=True, exist_ok=True)
        (home / "policy.yaml").write_text('scopes:\n  sites: ["127.0.0.1"]\n', encoding="utf-8")
        settings = make_settings(
            home, llm=leaky_llm, tg=leaky_tg, telegram_allowed_users=[OWNER], log_level="DEBUG"
        )
        assert settings.llm_api_key is not None
        assert settings.llm_api_key.get_secret_value() == values["llm_key"]
        with production_logging(settings, caplog) as service_log:
            svc: Service = await service_factory(settings)
            owner = await svc.runtime.stores.identities.owner()
            assert owner is not None
            # The service decrypts the secret (as a tool would), so it knows what to redact.
            assert secret not in redaction_values()
            keyring = Keyring.load(home, None)
            assert await SecretStore(svc.runtime.stores.db, keyring).get(owner.id, NAME) == secret
            assert secret in redaction_values()
            leaky_llm.default = repeat_tool_result

            # 1. A site echoes the secret; the model repeats the page to the user.
            site.pages["/echo"] = (
                f"<html><head><title>Session {secret}</title></head>"
                f"<body><p>Your API token is {secret}.</p></body></html>"
            )
            echo = site.url("/echo")
            leaky_llm.push(vllm.tool_calls([("web_read", {"url": echo})]))
            said = await turn(leaky_tg, f"what does {echo} say?", replies=1)
            assert said["text"].count(REDACTED) == 2  # title and text: it was there, now masked

            # 2. A fetch fails with the secret in its error: a redirect the scope refuses.
            site.redirects["/login"] = f"http://192.168.0.1/callback?token={secret}"
            login = site.url("/login")
            leaky_llm.push(vllm.tool_calls([("web_read", {"url": login})]))
            said = await turn(leaky_tg, f"open {login} please", replies=2)
            assert "Error:" in said["text"] and REDACTED in said["text"]

            # 3. The model call itself fails.
            leaky_llm.push(vllm.error(400, "This model's maximum context length is 32768 tokens"))
            said = await turn(leaky_tg, "hello?", replies=3)
            assert "400" in said["text"]

            # 4. A compromised model tries to save the raw secret after reading a page: it asks,
            #    and the request shows the call with the value masked.
            leaky_llm.push(
                vllm.tool_calls([("web_read", {"url": echo})]),
                vllm.tool_calls(
                    [("memory_save", {"content": f"My API token is {secret}", "kind": "fact"})]
                ),
            )
            asked = await turn(leaky_tg, f"summarise {echo} again", replies=4)
            assert "memory_save" in asked["text"] and REDACTED in asked["text"]
            [approval] = await svc.runtime.approvals.store.listing()
            assert REDACTED in approval.arguments
            assert await svc.runtime.memory.store.count() == 0

            audit_rows = await AuditLog(svc.runtime.stores.db).entries(limit=None)
            await svc.stop()

        # The fake admits only requests bearing the key (`vllm --api-key`): each one had it as
        # its Authorization header; the bodies are searched below.
        assert len(leaky_llm.requests) == 7
        # The tool results were there for the model, masked.
        seen = [c for body in leaky_llm.requests for c in tool_results(body, "web_read")]
        assert len(seen) >= 3 and all(REDACTED in c for c in seen)

    exported = dadang("audit", "export")
    assert exported.returncode == 0, exported.stderr
    listed = dadang("secrets", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{NAME}\t")  # names only
    assert {r.action for r in audit_rows} >= {"tool_call", "approval_requested", "model_call"}

    # Nowhere: the service's log output, the model's request bodies, the audit trail (as
    # exported and as stored), Telegram, the CLI's output.
    written = service_log.getvalue()
    assert "HTTP Request" in written and "***" in written  # wire lines, with the token masked
    found_in(written, values, what="the service's log output")
    for body in leaky_llm.requests:
        found_in(json.dumps(body, ensure_ascii=False), values, what="a request body to the model")
    found_in(exported.stdout + exported.stderr, values, what="`dadang audit export`")
    found_in(repr(audit_rows), values, what="the audit table")
    for sent in leaky_tg.sent:
        found_in(json.dumps(sent, ensure_ascii=False), values, what="a message sent to Telegram")
    found_in(listed.stdout + listed.stderr, values, what="`dadang secrets list`")

    # Raw log records, exception texts included: none of the values in any project logger's
    # records. The wire loggers of httpx, httpcore and python-telegram-bot log URLs and headers
    # as sent (Telegram puts the bot token in its URLs, a redirect's Location carried the
    # secret), aiosqlite every SQL parameter (the paused turn's checkpoint holds the model's
    # call as it made it); `dadang run` keeps them below its level and redacts anyway (above).
    raw = caplog.text
    lines = [line for line in raw.splitlines() if any(v in line for v in values.values())]
    for line in lines:
        assert line.startswith(WIRE_LOGGERS), f"a secret in a log line: {line[:300]}"
    assert any(values["token"] in line for line in lines)  # the capture saw the wire at DEBUG


def checkpoint_bytes(home: Path) -> bytes:
    """Everything LangGraph keeps for paused and finished turns (SQLite)."""
    with sqlite3.connect(home / "dadang.db") as conn:
        rows = conn.execute("SELECT checkpoint, metadata FROM checkpoints").fetchall()
        rows += conn.execute("SELECT value, value FROM writes").fetchall()
    return b"".join(bytes(a or b"") + bytes(b or b"") for a, b in rows)


async def test_a_secret_the_model_writes_into_a_memory_is_not_stored_or_audited(
    leaky_env: dict[str, str],
    leaky_llm: FakeVLLM,
    leaky_tg: FakeTelegram,
    service_factory: Any,
) -> None:
    """Worst case: a model that somehow holds the value writes it into a memory and a reminder."""
    values, home = leaky_env, Path(os.environ["DADANG_HOME"])
    secret = values["secret"]
    settings = make_settings(home, llm=leaky_llm, tg=leaky_tg, telegram_allowed_users=[OWNER])
    svc: Service = await service_factory(settings)
    owner = await svc.runtime.stores.identities.owner()
    assert owner is not None
    await SecretStore(svc.runtime.stores.db, Keyring.load(home, None)).set(owner.id, NAME, secret)
    assert secret in redaction_values()
    leaky_llm.push(
        vllm.tool_calls(
            [
                ("memory_save", {"content": f"My API token is {secret}"}),
                ("reminder_create", {"text": f"rotate {secret}", "at": "2031-01-01T09:00"}),
            ]
        ),
        vllm.text("Saved."),
    )
    said = await turn(leaky_tg, "remember that I like jasmine tea", replies=1)
    assert said["text"] == "Saved."
    memories = await svc.runtime.memory.store.recent(owner.id, limit=10)
    reminders = await svc.runtime.proactive.reminders.store.listing(user_id=owner.id)
    assert memories and reminders  # the writes themselves are allowed: the user asked for one
    audit = await AuditLog(svc.runtime.stores.db).entries(limit=None)
    checkpoints = await asyncio.to_thread(checkpoint_bytes, home)
    # The next turn: what the model is shown of the user's memories.
    leaky_llm.push(vllm.text("You like tea."))
    await turn(leaky_tg, "what do you know about my API token?", replies=2)
    sinks = {
        "memories": repr([m.content for m in memories]),
        "reminders": repr([r.text for r in reminders]),
        "audit": repr(audit),
        "checkpoints": checkpoints.decode("utf-8", "replace"),
        "the model's next request (its call echoed back)": json.dumps(leaky_llm.requests[1]),
        "the next turn's prompt (recalled memories)": json.dumps(leaky_llm.requests[2]),
    }
    where = [name for name, text in sinks.items() if secret in text]
    if where:
        raise SecretLeak(f"the secret value is in: {', '.join(where)}")
