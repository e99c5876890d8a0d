"""Outbox delivery of files through the real Telegram connector and the fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.metrics import Metrics
from agent.runtime.delivery import OutboxDelivery
from connectors.base import Admission, InboundMessage
from connectors.telegram import TelegramConnector
from memory.db import Database, open_database
from memory.files import FileStore
from memory.identities import IdentityStore
from memory.migrate import upgrade
from memory.models import OutboxStatus
from memory.outbox import OutboxStore
from tests.fakes.telegram import FakeTelegram

CHAT = 1001


@dataclass
class Sender:
    db: Database
    files: FileStore
    outbox: OutboxStore
    delivery: OutboxDelivery
    owner: int


async def ignore(message: InboundMessage) -> Admission:
    return Admission.REFUSED


@pytest.fixture
async def sender(tmp_path: Path, fake_tg: FakeTelegram) -> AsyncIterator[Sender]:
    url = f"sqlite:///{tmp_path / 'delivery.db'}"
    await asyncio.to_thread(upgrade, url)
    db = open_database(url)
    owner = (await IdentityStore(db).ensure_owner(name="Ann")).id
    connector = TelegramConnector(token=fake_tg.token, api_base=fake_tg.api_base, poll_timeout=1)
    await connector.start(ignore)
    files = FileStore(db, tmp_path / "files")
    outbox = OutboxStore(db)
    delivery = OutboxDelivery(outbox, {"telegram": connector}, Metrics(), files=files)
    await delivery.start()
    yield Sender(db, files, outbox, delivery, owner)
    await delivery.stop()
    await connector.stop()
    await db.dispose()


async def test_a_reply_queued_behind_a_rate_limited_document_still_follows_it(
    sender: Sender, fake_tg: FakeTelegram
) -> None:
    record = await sender.files.add(sender.owner, "plan.pdf", b"%PDF", mime="", origin="chat")
    fake_tg.fail_next("sendDocument", retry_after=1)
    document = await sender.outbox.add_file(
        channel="telegram",
        chat_id=str(CHAT),
        file_id=record.id,
        caption="The plan",
        dedupe_key="file:1:1",
        claimed=True,
    )
    assert document is not None
    reply = await sender.outbox.add(
        channel="telegram", chat_id=str(CHAT), text="Here is the plan.", claimed=True
    )
    sender.delivery.submit(document, channel="telegram", chat_id=str(CHAT))
    sender.delivery.submit(reply, channel="telegram", chat_id=str(CHAT))

    sent = await fake_tg.wait_sent(chat_id=CHAT, count=2, timeout=10)
    assert [s["method"] for s in sent] == ["sendDocument", "sendMessage"]
    assert sent[0]["text"] == "The plan" and sent[0]["document"]["filename"] == "plan.pdf"


async def test_a_file_deleted_before_delivery_fails_its_row_and_the_chat_goes_on(
    sender: Sender, fake_tg: FakeTelegram
) -> None:
    record = await sender.files.add(sender.owner, "old.txt", b"old", mime="", origin="chat")
    document = await sender.outbox.add_file(
        channel="telegram", chat_id=str(CHAT), file_id=record.id, caption="", dedupe_key=None
    )
    assert document is not None
    await sender.files.delete(sender.owner, record.id)
    await sender.outbox.add(channel="telegram", chat_id=str(CHAT), text="next")
    sent = await fake_tg.wait_sent(chat_id=CHAT, timeout=10)
    assert [s["method"] for s in sent] == ["sendMessage"]
    assert (await sender.outbox.counts()).get(OutboxStatus.FAILED) == 1
