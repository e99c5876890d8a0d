"""`dadang pair approve|reject|revoke`: the owner's decisions, their audit rows, and their limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from agent.cli.main import app
from memory.audit import AuditLog, AuditRecord
from memory.conversations import ConversationStore
from memory.db import Database, open_database
from memory.identities import IdentityStore, Pairing
from memory.memories import NewMemory
from memory.models import Conversation, Message, MessageStatus
from tests.conftest import make_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.test_cli import dadang

T = TypeVar("T")
DECISIONS = ("pairing_approved", "pairing_rejected", "pairing_revoked")


def cli(*args: str, stdin: str | None = None) -> Result:
    """Run `dadang ARGS` in this process (the environment decides DADANG_HOME and the database)."""
    return CliRunner().invoke(app, list(args), input=stdin)


def on_db(url: str, body: Callable[[Database], Awaitable[T]]) -> T:
    """Run `body` against the database at `url` from synchronous test code."""

    async def go() -> T:
        db = open_database(url)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def request(url: str, external_id: str, name: str) -> tuple[Pairing, bool]:
    """A Telegram stranger writes to the bot: what `Runtime._pairing` stores."""
    return on_db(
        url,
        lambda db: IdentityStore(db).request_pairing(
            channel="telegram", external_id=external_id, chat_id=external_id, display_name=name
        ),
    )


def audit_rows(url: str) -> list[AuditRecord]:
    return on_db(url, lambda db: AuditLog(db).entries(limit=None))


def verify(url: str) -> tuple[int, list[Any]]:
    return on_db(url, lambda db: AuditLog(db).verify())


def user_for(url: str, channel: str, external_id: str) -> int | None:
    return on_db(url, lambda db: IdentityStore(db).user_for(channel, external_id))


@pytest.fixture
def url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test database (SQLite and PostgreSQL), also used by every `dadang` command."""
    monkeypatch.setenv("DADANG_DATABASE_URL", db_url)
    return db_url


def test_approve_reject_and_revoke_are_chained_into_the_audit_log(url: str) -> None:
    ann, new = request(url, "7201", "Ann")
    assert new
    bob, _ = request(url, "7202", "Bob")
    cy, _ = request(url, "7203", "Cy")
    assert request(url, "7201", "Ann") == (ann, False)  # asked again: no second audit row

    assert cli("pair", "approve", ann.code).exit_code == 0
    assert cli("pair", "reject", bob.code.lower()).exit_code == 0
    assert cli("pair", "approve", cy.code).exit_code == 0
    ann_id = user_for(url, "telegram", "7201")
    cy_id = user_for(url, "telegram", "7203")
    assert ann_id is not None and cy_id is not None

    by_identity = cli("pair", "revoke", "telegram:7201")
    assert by_identity.exit_code == 0, by_identity.output
    assert "revoked telegram:7201 (Ann)" in by_identity.stdout
    assert f"their data stays: user {ann_id}" in by_identity.stdout
    by_code = cli("pair", "revoke", cy.code)
    assert by_code.exit_code == 0, by_code.output

    rows = audit_rows(url)
    assert [(r.actor, r.action, r.target, r.user_id) for r in rows] == [
        ("system", "pairing_requested", "telegram:7201", None),
        ("system", "pairing_requested", "telegram:7202", None),
        ("system", "pairing_requested", "telegram:7203", None),
        ("owner", "pairing_approved", "telegram:7201", ann_id),
        ("owner", "pairing_rejected", "telegram:7202", None),
        ("owner", "pairing_approved", "telegram:7203", cy_id),
        ("owner", "pairing_revoked", "telegram:7201", ann_id),
        ("owner", "pairing_revoked", "telegram:7203", cy_id),
    ]
    approved, rejected, revoked = rows[3], rows[4], rows[6]
    assert approved.detail == {
        "channel": "telegram",
        "external_id": "7201",
        "display_name": "Ann",
        "user_id": ann_id,
        "code": ann.code,
    }
    assert rejected.detail["display_name"] == "Bob" and rejected.detail["user_id"] is None
    assert revoked.detail == approved.detail
    assert verify(url) == (8, [])
    assert "audit log intact: 8 rows" in cli("audit", "verify").stdout

    listing = cli("pair", "list", "--all").stdout
    assert f"{ann.code}  revoked" in listing and f"{cy.code}  revoked" in listing
    assert f"{bob.code}  rejected" in listing
    # Revoked people are strangers again; their user (and everything stored for it) remains.
    assert user_for(url, "telegram", "7201") is None
    assert on_db(url, lambda db: IdentityStore(db).get_user(ann_id)) is not None
    again, new = request(url, "7201", "Ann")
    assert new and again.code != ann.code


def test_the_owners_identities_cannot_be_revoked(url: str) -> None:
    owner = on_db(url, lambda db: IdentityStore(db).ensure_owner(name="Olga"))
    mine, _ = request(url, "7301", "Olga on Telegram")
    assert cli("pair", "approve", mine.code, "--as-owner").exit_code == 0

    for who in ("cli:local", "telegram:7301", mine.code):
        refused = cli("pair", "revoke", who)
        assert refused.exit_code == 1, who
        assert "owner's own identity and cannot be revoked" in refused.stderr
    assert user_for(url, "cli", "local") == owner.id
    assert user_for(url, "telegram", "7301") == owner.id
    assert "pairing_revoked" not in [r.action for r in audit_rows(url)]
    assert verify(url)[1] == []


def test_revoking_someone_who_is_not_paired_is_refused(url: str) -> None:
    pending, _ = request(url, "7401", "Pat")
    turned_down, _ = request(url, "7402", "Rex")
    assert cli("pair", "reject", turned_down.code).exit_code == 0

    cases = {
        "telegram:999": "telegram:999 is not paired",
        "ZZZZZZ": "no pairing code 'ZZZZZZ'",
        pending.code: f"`dadang pair reject {pending.code}`",
        turned_down.code: "telegram:7402 is not paired",
        "telegram:": "is not CHANNEL:ID",
    }
    for who, message in cases.items():
        refused = cli("pair", "revoke", who)
        assert refused.exit_code == 1, who
        assert message in refused.stderr, refused.stderr
    assert "pairing_revoked" not in [r.action for r in audit_rows(url)]
    assert cli("pair", "list").stdout.startswith(f"{pending.code}  pending")


def test_an_allow_listed_id_is_not_revoked_but_the_setting_to_change_is_named(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DADANG_TELEGRAM_ALLOWED_USERS", "1001,7501")
    on_db(  # what the running service does on the allow-listed person's first message
        url,
        lambda db: IdentityStore(db).link(
            user_id=None, channel="telegram", external_id="7501", display_name="Al"
        ),
    )
    refused = cli("pair", "revoke", "telegram:7501")
    assert refused.exit_code == 1
    assert "DADANG_TELEGRAM_ALLOWED_USERS" in refused.stderr
    assert user_for(url, "telegram", "7501") is not None


async def test_a_revoked_telegram_user_is_refused_by_the_running_service_at_once(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    stranger = 7601
    await service_factory(make_settings(clean_environ, llm=fake_llm, tg=fake_tg))
    env = {"DADANG_HOME": str(clean_environ)}
    fake_tg.push_message(stranger, "hello?")
    first_code = (await fake_tg.wait_sent(chat_id=stranger, count=1))[0]["text"].split()[-1]
    approved = await asyncio.to_thread(dadang, "pair", "approve", first_code, env=env)
    assert approved.returncode == 0, approved.stderr
    await fake_tg.wait_sent(chat_id=stranger, count=2, timeout=15)  # "you're in"
    fake_tg.push_message(stranger, "now?")
    assert (await fake_tg.wait_sent(chat_id=stranger, count=3))[-1]["text"] == "echo: now?"
    answered = len(fake_llm.requests)

    revoked = await asyncio.to_thread(dadang, "pair", "revoke", f"telegram:{stranger}", env=env)
    assert revoked.returncode == 0, revoked.stderr
    fake_tg.push_message(stranger, "still there?")
    prompt = (await fake_tg.wait_sent(chat_id=stranger, count=4))[-1]["text"]
    assert "dadang pair approve" in prompt  # back to the pairing flow, with a new code
    assert prompt.split()[-1] != first_code
    await asyncio.sleep(0.5)
    assert len(fake_llm.requests) == answered  # the model never saw the revoked person again
    assert len(fake_tg.sent_to(stranger)) == 4


async def test_a_revoked_person_approved_again_is_back_in_their_own_history_and_memories(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    person = 7611
    svc = await service_factory(make_settings(clean_environ, llm=fake_llm, tg=fake_tg))
    identities = svc.runtime.stores.identities
    env = {"DADANG_HOME": str(clean_environ)}
    fake_tg.push_message(person, "hello?", first_name="Ann")
    code = (await fake_tg.wait_sent(chat_id=person, count=1))[0]["text"].split()[-1]
    assert (await asyncio.to_thread(dadang, "pair", "approve", code, env=env)).returncode == 0
    await fake_tg.wait_sent(chat_id=person, count=2, timeout=15)  # "you're in"
    fake_tg.push_message(person, "my cat is called Mochi", first_name="Ann")
    await fake_tg.wait_sent(chat_id=person, count=3)
    ann = await identities.user_for("telegram", str(person))
    assert ann is not None
    await svc.runtime.memory.store.add(
        ann, NewMemory(content="Mochi the cat is scared of the vacuum", kind="preference")
    )

    revoked = await asyncio.to_thread(dadang, "pair", "revoke", f"telegram:{person}", env=env)
    assert revoked.returncode == 0, revoked.stderr
    fake_tg.push_message(person, "still there?", first_name="Ann")
    new_code = (await fake_tg.wait_sent(chat_id=person, count=4))[-1]["text"].split()[-1]
    assert new_code != code
    again = await asyncio.to_thread(dadang, "pair", "approve", new_code, env=env)
    assert again.returncode == 0, again.stderr
    assert f"re-admitted telegram:{person} (Ann) with their earlier data (user {ann})" in (
        again.stdout
    )
    await fake_tg.wait_sent(chat_id=person, count=5, timeout=15)  # "you're in" again
    assert await identities.user_for("telegram", str(person)) == ann  # not a new, empty user

    fake_tg.push_message(person, "what is my cat afraid of?", first_name="Ann")
    assert (await fake_tg.wait_sent(chat_id=person, count=6))[-1]["text"].startswith("echo:")
    prompt = fake_llm.requests[-1]["messages"]
    assert "Mochi the cat is scared of the vacuum" in prompt[0]["content"]  # their memory
    assert any(m["content"] == "my cat is called Mochi" for m in prompt)  # their history
    audited = await AuditLog(svc.runtime.stores.db).entries(limit=None)
    decisions = [(r.action, r.user_id) for r in audited if r.action in DECISIONS]
    assert decisions == [
        ("pairing_approved", ann),
        ("pairing_revoked", ann),
        ("pairing_approved", ann),
    ]
    readmission = [r for r in audited if r.action == "pairing_approved"][-1]
    assert readmission.detail["readmitted"] is True and readmission.detail["code"] == new_code


def test_a_revoked_person_approved_as_owner_brings_their_chat_to_the_owner(url: str) -> None:
    owner = on_db(url, lambda db: IdentityStore(db).ensure_owner(name="Olga"))
    first, _ = request(url, "7621", "Tom")
    assert cli("pair", "approve", first.code).exit_code == 0
    tom = user_for(url, "telegram", "7621")
    assert tom is not None and tom != owner.id
    chat = on_db(  # Tom wrote from his private chat: its conversation is his
        url,
        lambda db: ConversationStore(db).conversation_for(
            user_id=tom, channel="telegram", chat_id="7621"
        ),
    )
    assert cli("pair", "revoke", "telegram:7621").exit_code == 0
    assert cli("pair", "revoke", "telegram:7621").exit_code == 1  # revoked already

    again, _ = request(url, "7621", "Tom")
    approved = cli("pair", "approve", again.code, "--as-owner")
    assert approved.exit_code == 0, approved.output
    assert "approved telegram:7621 (Tom) as you (the owner)" in approved.stdout
    assert f"stays with user {tom}" in approved.stdout
    assert user_for(url, "telegram", "7621") == owner.id
    # The same row (the running service caches a chat's conversation id) now is the owner's:
    # the owner's turns never read or write Tom's user's history under Tom's user id.
    rows = on_db(url, lambda db: _conversations(db, "telegram", "7621"))
    assert rows == [(chat, owner.id)]
    assert on_db(url, lambda db: IdentityStore(db).get_user(tom)) is not None
    last = audit_rows(url)[-1]
    assert (last.action, last.user_id) == ("pairing_approved", owner.id)
    assert last.detail["readmitted"] is False and last.detail["previous_user_id"] == tom
    assert verify(url)[1] == []


def test_a_revoked_person_allow_listed_later_is_re_admitted_on_sight(url: str) -> None:
    first, _ = request(url, "7631", "Uma")
    assert cli("pair", "approve", first.code).exit_code == 0
    uma = user_for(url, "telegram", "7631")
    assert cli("pair", "revoke", "telegram:7631").exit_code == 0
    # What the running service does for an allow-listed id it cannot resolve to a user.
    linked = on_db(
        url,
        lambda db: IdentityStore(db).link(
            user_id=None, channel="telegram", external_id="7631", display_name="Uma"
        ),
    )
    assert linked == uma == user_for(url, "telegram", "7631")
    last = audit_rows(url)[-1]
    assert (last.actor, last.action, last.user_id) == ("system", "pairing_approved", uma)
    assert last.detail["readmitted"] is True
    assert last.detail["via"] == "telegram_allowed_users"


async def _conversations(db: Database, channel: str, chat_id: str) -> list[tuple[int, int]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(Conversation.id, Conversation.user_id).where(
                Conversation.channel == channel, Conversation.chat_id == chat_id
            )
        )
        return [(i, u) for i, u in rows.all()]


async def test_a_revoked_persons_unanswered_message_is_not_replayed_at_start(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    stranger = 7602
    settings = make_settings(clean_environ, llm=fake_llm, tg=fake_tg)
    svc = await service_factory(settings)
    fake_tg.push_message(stranger, "hello?")
    code = (await fake_tg.wait_sent(chat_id=stranger, count=1))[0]["text"].split()[-1]
    env = {"DADANG_HOME": str(clean_environ)}
    assert (await asyncio.to_thread(dadang, "pair", "approve", code, env=env)).returncode == 0
    await fake_tg.wait_sent(chat_id=stranger, count=2, timeout=15)
    # Read before stopping: a stopped service's engine must not open new connections.
    user_id = await svc.runtime.stores.identities.user_for("telegram", str(stranger))
    assert user_id is not None
    await svc.stop()

    async def leave_unanswered(db: Database) -> int:
        record = await ConversationStore(db).record_inbound(
            user_id=user_id,
            channel="telegram",
            chat_id=str(stranger),
            text="a message left unanswered by a crash",
            channel_message_id="crash-1",
        )
        assert record is not None
        return record.message_id

    message_id = await asyncio.to_thread(on_db, settings.effective_database_url, leave_unanswered)
    assert (await asyncio.to_thread(cli, "pair", "revoke", f"telegram:{stranger}")).exit_code == 0
    before = len(fake_llm.requests)
    again = await service_factory(settings)
    await asyncio.sleep(0.5)
    assert len(fake_llm.requests) == before  # not answered for someone who lost access
    async with again.runtime.stores.db.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None and message.status == MessageStatus.REJECTED
