"""A revoked person is sent nothing unasked, and their reminders resume when they are re-admitted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text as sql

from automation.scheduler.engine import JobEngine
from memory.db import open_database, open_sync_engine
from memory.memories import NewMemory
from memory.proactive_models import ReminderStatus
from memory.reminders import ReminderStore
from tests.conftest import Service
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.proactive.helpers import proactive_settings
from tests.test_cli import dadang

PERSON = 7801


async def _admit(svc: Service) -> int:
    """Pia asks to pair from her private chat and the owner approves (again, if revoked)."""
    identities = svc.runtime.stores.identities
    pairing, _ = await identities.request_pairing(
        channel="telegram", external_id=str(PERSON), chat_id=str(PERSON), display_name="Pia"
    )
    decided = await identities.decide_pairing(pairing.code, approve=True)
    assert decided is not None and decided.user_id is not None
    return decided.user_id


async def _revoke(svc: Service) -> None:
    assert await svc.runtime.stores.identities.revoke("telegram", str(PERSON)) is not None


async def _runs(store: ReminderStore, reminder_id: int, count: int = 1) -> list[str]:
    """The outcomes of a reminder's firings, once there are `count` of them."""
    async with asyncio.timeout(15):
        while len(runs := await store.runs(f"reminder:{reminder_id}")) < count:
            await asyncio.sleep(0.1)
    return [outcome for _, outcome, _ in runs]


async def _due_now(url: str, *job_ids: str) -> None:
    """Pretend these jobs' time has come (edits the job store while the service is stopped)."""
    sync = open_sync_engine(url)
    engine = JobEngine(sync)
    await asyncio.to_thread(engine.start)
    for job_id in job_ids:
        await asyncio.to_thread(
            engine._scheduler.modify_job, job_id, next_run_time=datetime.now(UTC)
        )
    await asyncio.to_thread(engine.shutdown)
    sync.dispose()


async def _heartbeat_jobs(url: str) -> list[str]:
    db = open_database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(sql("SELECT id FROM apscheduler_jobs"))
            return sorted(i for (i,) in rows if i.startswith("heartbeat:"))
    finally:
        await db.dispose()


async def test_a_revoked_persons_reminders_are_held_back_then_resume_after_readmission(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    settings = proactive_settings(clean_environ, fake_llm, fake_tg, scheduler_grace=3600)
    url = settings.effective_database_url
    svc = await service_factory(settings)
    pia = await _admit(svc)
    reminders = svc.runtime.proactive.reminders
    soon = datetime.now(UTC) + timedelta(seconds=2)
    where = {"timezone": "Europe/Berlin", "channel": "telegram", "chat_id": str(PERSON)}
    once, _ = await reminders.create(user_id=pia, text="call the plumber", at=soon, **where)
    daily, _ = await reminders.create(
        user_id=pia, text="water the basil", cron="0 9 * * *", **where
    )
    task, _ = await reminders.create(
        user_id=pia, text="summarise my inbox", timezone="Europe/Berlin", at=soon, kind="agent"
    )
    await _revoke(svc)

    # While revoked: the one-off and the task come due, and (pretending it is 09:00) the daily.
    assert await _runs(reminders.store, once.id) == ["revoked"]
    assert await _runs(reminders.store, task.id) == ["revoked"]
    await svc.stop()
    await _due_now(url, f"reminder:{daily.id}")
    svc = await service_factory(settings)
    reminders = svc.runtime.proactive.reminders
    assert await _runs(reminders.store, daily.id) == ["revoked"]
    await asyncio.sleep(0.5)
    assert fake_tg.sent_to(PERSON) == []
    assert fake_llm.requests == []  # the task did not run either
    assert (await reminders.store.get(once.id)).status == ReminderStatus.MISSED
    assert (await reminders.store.get(task.id)).status == ReminderStatus.MISSED
    kept = await reminders.store.get(daily.id)
    assert kept.status == ReminderStatus.ACTIVE and kept.next_run_at > datetime.now(UTC)
    logged = await svc.runtime.proactive.store.entries(user_id=pia)
    assert sorted((e.ref, e.source, e.decision) for e in logged) == sorted(
        (f"reminder:{r.id}", "reminder", "skipped") for r in (once, task, daily)
    )
    reasons = {e.ref: e.reason for e in logged}
    assert "marked missed" in reasons[f"reminder:{once.id}"]
    assert "fires again from its next time" in reasons[f"reminder:{daily.id}"]

    # Re-admitted: the same user; what was held back is listed; the daily one fires again.
    pairing, _ = await svc.runtime.stores.identities.request_pairing(
        channel="telegram", external_id=str(PERSON), chat_id=str(PERSON), display_name="Pia"
    )
    env = {"DADANG_HOME": str(clean_environ)}
    approved = await asyncio.to_thread(dadang, "pair", "approve", pairing.code, env=env)
    assert approved.returncode == 0, approved.stderr
    lines = approved.stdout.splitlines()
    assert lines[0] == f"re-admitted telegram:{PERSON} (Pia) with their earlier data (user {pia})"
    assert "3 reminder firing(s) came due while they were revoked" in lines[1]
    assert [line.split()[0] for line in lines[2:]] == [f"#{once.id}", f"#{task.id}", f"#{daily.id}"]
    assert lines[2].endswith("missed  call the plumber")
    assert lines[4].endswith("recurring: fires again from its next time  water the basil")
    await fake_tg.wait_sent(chat_id=PERSON, count=1, timeout=15)  # "you're in"
    await svc.stop()
    await _due_now(url, f"reminder:{daily.id}")
    svc = await service_factory(settings)
    sent = await fake_tg.wait_sent(chat_id=PERSON, count=2, timeout=15)
    assert sent[1]["text"] == "⏰ Reminder: water the basil"
    assert await _runs(svc.runtime.proactive.reminders.store, daily.id, 2) == ["revoked", "sent"]
    await asyncio.sleep(0.5)
    assert len(fake_tg.sent_to(PERSON)) == 2  # the missed one-off is not sent after all


async def test_no_heartbeat_or_follow_up_for_a_revoked_person(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    settings = proactive_settings(clean_environ, fake_llm, fake_tg)
    url = settings.effective_database_url
    svc = await service_factory(settings)
    pia = await _admit(svc)
    proactive = svc.runtime.proactive
    planner = proactive.planner
    planner._heartbeat = 30  # as with the default DADANG_HEARTBEAT_MINUTES
    assert await planner.ensure_heartbeats() == 1
    assert await _heartbeat_jobs(url) == [f"heartbeat:{pia}"]
    await svc.runtime.memory.store.add(
        pia,
        NewMemory(
            content="send Pia the tax forms",
            kind="commitment",
            due_at=datetime.now(UTC) + timedelta(days=2),
        ),
    )

    await _revoke(svc)
    assert await planner.ensure_heartbeats() == 0
    assert await _heartbeat_jobs(url) == []  # removed at the planner's next round
    assert await proactive.heartbeat.beat(pia) == "revoked"  # a beat already under way
    assert await planner.plan_followups() == 0
    assert await proactive.reminders.store.listing(user_id=pia) == []
    assert fake_llm.requests == []
    assert await proactive.store.entries(user_id=pia) == []

    assert await _admit(svc) == pia
    assert await planner.ensure_heartbeats() == 1
    assert await _heartbeat_jobs(url) == [f"heartbeat:{pia}"]
    assert await planner.plan_followups() == 1
    assert [r.origin for r in await proactive.reminders.store.listing(user_id=pia)] == ["followup"]


async def test_reminders_of_a_person_moved_to_the_owner_never_reach_the_owners_chat(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await service_factory(proactive_settings(clean_environ, fake_llm, fake_tg))
    identities = svc.runtime.stores.identities
    pia = await _admit(svc)
    reminders = svc.runtime.proactive.reminders
    record, _ = await reminders.create(
        user_id=pia,
        text="Pia's pharmacy pickup",
        timezone="Europe/Berlin",
        at=datetime.now(UTC) + timedelta(seconds=2),
        channel="telegram",
        chat_id=str(PERSON),
    )
    await _revoke(svc)
    pairing, _ = await identities.request_pairing(
        channel="telegram", external_id=str(PERSON), chat_id=str(PERSON), display_name="Pia"
    )
    owner = await identities.owner()
    moved = await identities.decide_pairing(pairing.code, approve=True, user_id=owner.id)
    assert moved.user_id == owner.id and moved.previous_user_id == pia and not moved.readmitted

    # The chat is the owner's now; Pia's user is reached by no identity, so nothing of hers
    # is delivered there.
    assert await _runs(reminders.store, record.id) == ["undeliverable"]
    await asyncio.sleep(0.5)
    assert fake_tg.sent_to(PERSON) == []
