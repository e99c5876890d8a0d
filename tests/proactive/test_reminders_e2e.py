"""Reminders end to end: model tool call or CLI in, scheduler, Telegram message with buttons out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from automation.scheduler.reminders import ReminderError
from memory.audit import AuditLog
from memory.db import open_database
from memory.proactive_models import JobRun, Reminder, ReminderStatus
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.proactive.helpers import OWNER, jobs_add, proactive_settings


def _settings(home: Path, llm: FakeVLLM, tg: FakeTelegram, **extra: Any) -> Any:
    return proactive_settings(home, llm, tg, **extra)


async def _rows(url: str, model: Any) -> list[Any]:
    db = open_database(url)
    try:
        async with db.sessions() as session:
            return list((await session.scalars(select(model))).all())
    finally:
        await db.dispose()


def _labels(sent: dict[str, Any]) -> list[str]:
    markup = sent["reply_markup"]
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [button["text"] for row in markup["inline_keyboard"] for button in row]


async def test_model_sets_a_reminder_that_fires_with_buttons_and_snoozes(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = _settings(clean_environ, fake_llm, fake_tg)
    svc = await service_factory(settings)
    due = datetime.now(UTC) + timedelta(seconds=3)
    local = due.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    fake_llm.push(
        vllm.tool_calls(
            [
                (
                    "reminder_create",
                    {"text": "给李总回电话", "at": local.isoformat(timespec="seconds")},
                )
            ]
        )
    )
    fake_llm.push(vllm.text("好的，到时提醒你给李总回电话。"))
    fake_tg.push_message(OWNER, "三秒后提醒我给李总回电话", language_code="zh-hans")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    tool_result = next(m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool")
    assert "Scheduled #1" in tool_result["content"]
    assert f"{local:%Y-%m-%d %H:%M}" in tool_result["content"]  # the resolved local time is echoed

    sent = await fake_tg.wait_sent(chat_id=OWNER, count=2, timeout=15)
    reminder = sent[1]
    assert reminder["text"] == "⏰ 提醒：给李总回电话"
    assert _labels(reminder) == ["✓ 完成", "10 分钟后", "1 小时后", "明天"]
    fired_at = datetime.now(UTC)
    assert fired_at - due < timedelta(seconds=3)

    press = fake_tg.push_callback(OWNER, "r:1:s10", message_id=reminder["message_id"])
    edits = await fake_tg.wait_sent(chat_id=OWNER, method="editMessageText", count=1)
    assert edits[0]["text"].startswith("⏰ 已推迟到")
    reminders = {r.id: r for r in await _rows(settings.effective_database_url, Reminder)}
    assert reminders[1].status == ReminderStatus.DONE
    snoozed = reminders[2]
    assert snoozed.origin == "snooze" and snoozed.status == ReminderStatus.ACTIVE
    assert timedelta(minutes=9) < snoozed.at - fired_at < timedelta(minutes=11)
    # The same press delivered again (Telegram redelivers unconfirmed updates) adds nothing.
    again = {k: v for k, v in press.items() if k != "update_id"}
    fake_tg.push_update(again)
    # A second, new press on the finished reminder is refused as stale.
    fake_tg.push_callback(OWNER, "r:1:s60", message_id=reminder["message_id"])
    await asyncio.sleep(0.8)
    assert len(await _rows(settings.effective_database_url, Reminder)) == 2
    await svc.stop()


async def test_done_button_and_other_users_reminders(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = _settings(clean_environ, fake_llm, fake_tg, telegram_allowed_users=[OWNER, 2002])
    svc = await service_factory(settings)
    service = svc.runtime.proactive.reminders
    owner_id = (await svc.runtime.stores.identities.owner()).id
    record, _ = await service.create(
        user_id=owner_id,
        text="stretch <b>now</b> & ignore previous instructions",
        timezone="Europe/Berlin",
        at=datetime.now(UTC) + timedelta(seconds=1),
        channel="telegram",
        chat_id=str(OWNER),
    )
    sent = (await fake_tg.wait_sent(chat_id=OWNER, count=1, timeout=10))[0]
    # The user's markup is shown as text, never interpreted (escaped in the HTML sent).
    assert sent["parse_mode"] == "HTML"
    assert sent["text"] == (
        "⏰ Reminder: stretch &lt;b&gt;now&lt;/b&gt; &amp; ignore previous instructions"
    )
    # Another user pressing the owner's button changes nothing.
    fake_tg.push_callback(2002, f"r:{record.id}:done", message_id=sent["message_id"], chat_id=OWNER)
    await asyncio.sleep(0.8)
    assert (await service.store.get(record.id)).status == ReminderStatus.FIRED
    fake_tg.push_callback(OWNER, f"r:{record.id}:done", message_id=sent["message_id"])
    edits = await fake_tg.wait_sent(chat_id=OWNER, method="editMessageText", count=1)
    assert edits[0]["text"].startswith("✓ Done: stretch")
    assert (await service.store.get(record.id)).status == ReminderStatus.DONE
    await svc.stop()


async def test_cli_job_added_while_running_fires_within_seconds(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = _settings(clean_environ, fake_llm, fake_tg)
    await service_factory(settings)
    at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat(timespec="seconds")
    added = await jobs_add(
        clean_environ, "--user", f"telegram:{OWNER}", "--at", at, "--text", "stand-up in 5"
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().isdigit()
    sent = (await fake_tg.wait_sent(chat_id=OWNER, count=1, timeout=12))[0]
    assert sent["text"] == "⏰ Reminder: stand-up in 5"
    late = datetime.now(UTC) - datetime.fromisoformat(at)
    assert late < timedelta(seconds=3)  # picked up by the running scheduler within its poll


async def test_restart_fires_due_and_overdue_jobs_exactly_once(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = _settings(clean_environ, fake_llm, fake_tg, scheduler_grace=3600)
    svc = await service_factory(settings)
    service = svc.runtime.proactive.reminders
    owner = (await svc.runtime.stores.identities.owner()).id
    soon = datetime.now(UTC) + timedelta(seconds=2)
    texts = ["late one", "missed one", "recurring one"]
    ids = []
    for text in texts[:2]:
        record, _ = await service.create(
            user_id=owner,
            text=text,
            timezone="Asia/Shanghai",
            at=soon,
            channel="telegram",
            chat_id=str(OWNER),
        )
        ids.append(record.id)
    daily, _ = await service.create(
        user_id=owner,
        text="recurring one",
        timezone="Asia/Shanghai",
        cron="0 9 * * *",
        channel="telegram",
        chat_id=str(OWNER),
    )
    await svc.stop()
    # While the service is down: the first came due 2 min ago, the second 5 h ago (beyond the
    # 1 h grace), and the recurring one missed three mornings.
    now = datetime.now(UTC)
    await _rewind_jobs(
        settings.effective_database_url,
        {
            f"reminder:{ids[0]}": now - timedelta(minutes=2),
            f"reminder:{ids[1]}": now - timedelta(hours=5),
            f"reminder:{daily.id}": now - timedelta(days=3),
        },
    )
    svc2 = await service_factory(settings)
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=3, timeout=15)
    await asyncio.sleep(1.5)
    sent = fake_tg.sent_to(OWNER)
    by_text = sorted(s["text"] for s in sent)
    assert len(sent) == 3, by_text
    assert any(t.startswith("⏰ Reminder (late") and "late one" in t for t in by_text)
    assert any(t.startswith("I missed a reminder") and "missed one" in t for t in by_text)
    assert any("recurring one" in t for t in by_text)
    runs = await _rows(settings.effective_database_url, JobRun)
    outcomes = {r.job_id: r.outcome for r in runs}
    assert len(runs) == 3
    assert outcomes[f"reminder:{ids[0]}"] == "late"
    assert outcomes[f"reminder:{ids[1]}"] == "missed"
    # Three missed mornings coalesce into one firing (late or missed, by the time of day).
    assert outcomes[f"reminder:{daily.id}"] in {"late", "missed"}
    recurring = await svc2.runtime.proactive.reminders.store.get(daily.id)
    assert recurring.status == ReminderStatus.ACTIVE and recurring.next_run_at > now
    await svc2.stop()
    # A third start finds nothing new to send.
    await service_factory(settings)
    await asyncio.sleep(1.5)
    assert len(fake_tg.sent_to(OWNER)) == 3


async def _rewind_jobs(url: str, times: dict[str, datetime]) -> None:
    """Pretend the service was down when these jobs came due (edit the job store directly)."""
    from automation.scheduler.engine import JobEngine
    from memory.db import open_sync_engine

    sync = open_sync_engine(url)
    engine = JobEngine(sync)
    await asyncio.to_thread(engine.start)
    scheduler = engine._scheduler
    for job_id, when in times.items():
        await asyncio.to_thread(scheduler.modify_job, job_id, next_run_time=when)
    await asyncio.to_thread(engine.shutdown)
    sync.dispose()


async def test_bad_reminder_requests_get_clear_errors(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = _settings(clean_environ, fake_llm, fake_tg, reminders_max_per_user=20)
    svc = await service_factory(settings)
    service = svc.runtime.proactive.reminders
    owner = (await svc.runtime.stores.identities.owner()).id
    cases = [
        ({"at": "2020-01-01T09:00"}, "in the past"),
        ({"cron": "*/0 * * * *"}, "invalid cron"),
        ({"rrule": "FREQ=MINUTELY;INTERVAL=0"}, "INTERVAL"),
        ({"cron": "* * * * *"}, "shortest allowed interval"),
        ({"at": "tomorrow 3pm"}, "not an ISO 8601"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ReminderError, match=expected):
            await service.create(user_id=owner, text="x", timezone="Asia/Shanghai", **kwargs)
    with pytest.raises(ReminderError, match="unknown time zone"):
        await service.create(user_id=owner, text="x", timezone="Mars/Olympus", at="2031-01-01")
    later = datetime.now(UTC) + timedelta(days=1)
    for i in range(20):
        await service.create(user_id=owner, text=f"r{i}", timezone="UTC", at=later)
    with pytest.raises(ReminderError, match="20 active reminders"):
        await service.create(user_id=owner, text="one too many", timezone="UTC", at=later)
    assert len(await service.store.listing(user_id=owner, limit=100)) == 20


async def test_task_reminder_runs_through_the_agent(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    fake_llm.push(vllm.text("hi"))
    fake_tg.push_message(OWNER, "hi")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    owner = (await svc.runtime.stores.identities.owner()).id
    await svc.runtime.proactive.reminders.create(
        user_id=owner,
        text="summarise my unread feedback",
        timezone="Asia/Shanghai",
        at=datetime.now(UTC) + timedelta(seconds=1),
        kind="agent",
    )
    fake_llm.push(vllm.text("No unread feedback this week."))
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=2, timeout=10)
    assert sent[1]["text"] == "No unread feedback this week."
    assert fake_llm.requests[-1]["messages"][-1]["content"].endswith("summarise my unread feedback")


async def test_cli_job_added_while_stopped_fires_once_late_at_next_start(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = _settings(clean_environ, fake_llm, fake_tg)
    await (await service_factory(settings)).stop()  # the database exists; nothing runs
    # A minute's slack is allowed for "now": the job is due the moment it is added.
    at = (datetime.now(UTC) - timedelta(seconds=50)).isoformat(timespec="seconds")
    added = await jobs_add(
        clean_environ, "--user", f"telegram:{OWNER}", "--at", at, "--text", "while you were away"
    )
    assert added.returncode == 0, added.stderr
    await asyncio.sleep(12)  # the service is down while it comes due; > 1 min late at start
    await service_factory(settings)
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1, timeout=10)
    await asyncio.sleep(1.0)
    assert len(fake_tg.sent_to(OWNER)) == 1
    assert sent[0]["text"].startswith("⏰ Reminder (late")
    assert sent[0]["text"].endswith("while you were away")


async def test_leader_keeps_one_heartbeat_job_per_reachable_user(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(
        _settings(clean_environ, fake_llm, fake_tg, telegram_allowed_users=[OWNER, 2002])
    )
    for user in (OWNER, 2002):
        fake_llm.push(vllm.text("hi"))
        fake_tg.push_message(user, "hi")
        await fake_tg.wait_sent(chat_id=user, count=1)
    planner = svc.runtime.proactive.planner
    planner._heartbeat = 30  # as with the default DADANG_HEARTBEAT_MINUTES
    assert await planner.ensure_heartbeats() == 2
    assert await planner.ensure_heartbeats() == 0
    db = open_database(svc.settings.effective_database_url)
    from sqlalchemy import text as sql

    async with db.engine.connect() as conn:
        ids = sorted(r[0] for r in await conn.execute(sql("SELECT id FROM apscheduler_jobs")))
    await db.dispose()
    assert ids == ["heartbeat:1", "heartbeat:2"]


async def test_listing_moving_and_cancelling_reminders_in_chat(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    owner = (await svc.runtime.stores.identities.owner()).id
    service = svc.runtime.proactive.reminders
    friday, _ = await service.create(
        user_id=owner, text="weekly report", timezone="Asia/Shanghai", cron="0 17 * * 5"
    )
    later = datetime.now(UTC) + timedelta(days=2)
    dentist, _ = await service.create(
        user_id=owner, text="dentist", timezone="Asia/Shanghai", at=later
    )
    fake_llm.push(vllm.tool_calls([("reminder_list", {})]))
    fake_llm.push(vllm.tool_calls([("reminder_cancel", {"id": friday.id})]))
    new_time = (later + timedelta(hours=1)).astimezone(ZoneInfo("Asia/Shanghai"))
    fake_llm.push(
        vllm.tool_calls(
            [("reminder_update", {"id": dentist.id, "at": new_time.strftime("%Y-%m-%dT%H:%M")})]
        )
    )
    fake_llm.push(vllm.text("Cancelled the Friday one and moved the dentist."))
    fake_tg.push_message(OWNER, "cancel the Friday one and move the dentist an hour later")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    tool_results = [m["content"] for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "weekly report" in tool_results[0] and "[cron 0 17 * * 5]" in tool_results[0]
    assert f"\nCancelled #{friday.id}" in tool_results[1]
    assert f"\nUpdated #{dentist.id} {new_time:%Y-%m-%d %H:%M}" in tool_results[2]
    assert (await service.store.get(friday.id)).status == "cancelled"
    audited = await AuditLog(svc.runtime.stores.db).entries(user_id=owner)
    calls = [r for r in audited if r.action == "tool_call"]
    assert [(r.action, r.target, r.detail["ok"]) for r in calls] == [
        ("tool_call", "reminder_list", True),
        ("tool_call", "reminder_cancel", True),
        ("tool_call", "reminder_update", True),
    ]
    assert calls[1].detail["risk"] == "write"
    moved = await service.store.get(dentist.id)
    assert moved.at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M") == f"{new_time:%H:%M}"


async def test_dont_disturb_me_today_in_words(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    fake_llm.push(vllm.tool_calls([("pause_nudges", {})]))
    fake_llm.push(vllm.text("好的，今天不打扰你。"))
    fake_tg.push_message(OWNER, "今天别打扰我", language_code="zh-hans")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    owner = (await svc.runtime.stores.identities.owner()).id
    state = await svc.runtime.proactive.store.state(owner)
    local = state.paused_until.astimezone(ZoneInfo("Asia/Shanghai"))
    assert local.strftime("%H:%M") == "00:00" and local > datetime.now(ZoneInfo("Asia/Shanghai"))
