"""Storage behaviour on SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

import itertools

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import memory.approval_models
import memory.audit_models
import memory.file_models
import memory.proactive_models
import memory.secret_models
import memory.tool_access_models  # noqa: F401  (registers the tool_access table)
from memory.conversations import ConversationStore, Usage
from memory.db import open_database, sync_url
from memory.identities import IdentityStore
from memory.migrate import current_revision, head_revision, upgrade
from memory.models import Base, MessageStatus
from memory.notes import NoteStore
from memory.outbox import OutboxStore


def test_migrations_reach_head_and_match_the_models(db_url: str) -> None:
    assert current_revision(db_url) == head_revision()
    engine = create_engine(sync_url(db_url))

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        # Full-text search objects are dialect-specific DDL in revision 0002, not models;
        # APScheduler's job table belongs to APScheduler (revision 0003 mirrors its definition).
        return not (name or "").startswith(
            ("memory_fts", "ix_memories_fts", "apscheduler_jobs", "ix_apscheduler_jobs")
        )

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrating_twice_is_harmless(db_url: str) -> None:
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()


async def test_redelivered_message_is_stored_once(db_url: str) -> None:
    db = open_database(db_url)
    try:
        users = IdentityStore(db)
        owner = await users.ensure_owner(name="Ann")
        store = ConversationStore(db)
        first = await store.record_inbound(
            user_id=owner.id, channel="telegram", chat_id="7", text="hi", channel_message_id="7:1"
        )
        again = await store.record_inbound(
            user_id=owner.id, channel="telegram", chat_id="7", text="hi", channel_message_id="7:1"
        )
        assert first is not None
        assert again is None
        assert await store.count(role="user") == 1
    finally:
        await db.dispose()


async def test_pending_messages_come_back_in_order_until_answered_once(db_url: str) -> None:
    db = open_database(db_url)
    try:
        owner = await IdentityStore(db).ensure_owner(name="Ann")
        store = ConversationStore(db)
        records = [
            await store.record_inbound(
                user_id=owner.id,
                channel="cli",
                chat_id="local",
                text=f"m{i}",
                channel_message_id=f"cli-{i}",
            )
            for i in range(3)
        ]
        assert [r.text for r in await store.pending()] == ["m0", "m1", "m2"]
        first = records[0]
        assert first is not None
        outbox_id = await store.complete(first, reply="r0", usage=Usage(prompt_tokens=5))
        assert outbox_id is not None
        # A retried turn racing the finished one must not create a second reply.
        assert await store.complete(first, reply="r0 again", usage=Usage()) is None
        assert [r.text for r in await store.pending()] == ["m1", "m2"]
        history = await store.history(first.conversation_id, before_id=10**9, limit=10)
        assert [(h.role, h.text) for h in history] == [("user", "m0"), ("assistant", "r0")]
    finally:
        await db.dispose()


async def test_outbox_row_interrupted_while_sending_is_resent_after_recovery(db_url: str) -> None:
    db = open_database(db_url)
    try:
        outbox = OutboxStore(db)
        item = (await outbox.add(channel="telegram", chat_id="7", text="hello")).id
        assert await outbox.due(channels=frozenset({"telegram"})) == [(item, "telegram", "7")]
        claimed = await outbox.claim(item)
        assert claimed is not None
        assert await outbox.claim(item) is None  # nobody else can take it
        assert await outbox.due(channels=frozenset({"telegram"})) == []
        assert await outbox.recover() == 1  # the process died between send and mark
        again = await outbox.claim(item)
        assert again is not None
        assert again.attempts == 2
        await outbox.delivered(item, parts_sent=1, channel_ids=["99"])
        assert await outbox.recover() == 0
        assert (await outbox.counts()) == {"delivered": 1}
    finally:
        await db.dispose()


async def test_pairing_code_is_stable_and_approval_is_idempotent(db_url: str) -> None:
    db = open_database(db_url)
    try:
        users = IdentityStore(db)
        pairing, new = await users.request_pairing(
            channel="telegram", external_id="42", chat_id="42", display_name="Bob"
        )
        again, new_again = await users.request_pairing(
            channel="telegram", external_id="42", chat_id="42", display_name="Bob"
        )
        assert new and not new_again
        assert again.code == pairing.code
        approved = await users.decide_pairing(pairing.code.lower(), approve=True)
        assert approved is not None and approved.user_id is not None
        assert await users.decide_pairing(pairing.code, approve=True) is None
        assert await users.user_for("telegram", "42") == approved.user_id
    finally:
        await db.dispose()


async def test_notes_are_per_user_and_not_duplicated_by_a_retried_turn(db_url: str) -> None:
    db = open_database(db_url)
    try:
        users = IdentityStore(db)
        ann = await users.ensure_owner(name="Ann")
        bob = await users.link(
            user_id=None, channel="telegram", external_id="5", display_name="Bob"
        )
        notes = NoteStore(db)
        await notes.add(user_id=ann.id, text="milk", source_message_id=None)
        await notes.add(user_id=ann.id, text="milk", source_message_id=None)
        await notes.add(user_id=bob, text="bob's secret", source_message_id=None)
        assert [n.text for n in await notes.list(user_id=ann.id)] == ["milk"]
        assert [n.text for n in await notes.list(user_id=bob)] == ["bob's secret"]
        assert MessageStatus.PENDING == "pending"
    finally:
        await db.dispose()


async def test_history_window_moves_in_steps_so_the_prompt_prefix_stays_stable(db_url: str) -> None:
    db = open_database(db_url)
    try:
        owner = await IdentityStore(db).ensure_owner(name="Ann")
        store = ConversationStore(db)
        starts = []
        for i in range(20):
            record = await store.record_inbound(
                user_id=owner.id,
                channel="cli",
                chat_id="local",
                text=f"q{i}",
                channel_message_id=f"q{i}",
            )
            assert record is not None
            window = await store.history(
                record.conversation_id, before_id=record.message_id, limit=10, step=5
            )
            starts.append(window[0].text if window else None)
            assert len(window) <= 14
            await store.complete(record, reply=f"a{i}", usage=Usage())
        # 2 messages per exchange: the first message shown changes every 5 messages, not every turn.
        changes = sum(1 for a, b in itertools.pairwise(starts) if a != b)
        assert changes <= 8
        assert starts[-1] != "q0"
    finally:
        await db.dispose()
