"""Heartbeat and gate: silence costs nothing, nudges pass quiet hours, budget and repeats."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from memory.proactive_models import ReminderOrigin
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.proactive.helpers import OWNER, proactive_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _settings(home: Path, llm: FakeVLLM, tg: FakeTelegram, **extra: Any) -> Any:
    return proactive_settings(home, llm, tg, **extra)


def _quiet_now() -> str:
    """A quiet-hours range around the current Shanghai time."""
    local = datetime.now(SHANGHAI)
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def _decision(message: str, refs: list[str] | None = None) -> vllm.Reply:
    body = {"action": "message", "message": message, "reason": "unanswered", "refs": refs or []}
    return vllm.text(json.dumps(body, ensure_ascii=False))


async def _ask_question(fake_llm: FakeVLLM, fake_tg: FakeTelegram, count: int) -> None:
    fake_llm.push(vllm.text("Which day suits you for the dentist?"))
    fake_tg.push_message(OWNER, "book me a dentist appointment")
    await fake_tg.wait_sent(chat_id=OWNER, count=count)


async def test_heartbeat_with_nothing_due_costs_no_model_call(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    assert await proactive.heartbeat.beat(owner) == "silent"
    for _ in range(3):
        assert await proactive.heartbeat.beat(owner) == "unchanged"
    assert fake_llm.requests == []
    log = await proactive.store.entries(user_id=owner)
    assert [(e.decision, e.reason) for e in log] == [("silent", "nothing due")]


async def test_unanswered_question_is_followed_up_once(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    await _ask_question(fake_llm, fake_tg, count=1)
    calls = len(fake_llm.requests)
    fake_llm.push(_decision("Still want that dentist appointment? Which day works?"))
    assert await proactive.heartbeat.beat(owner) == "sent"
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=2)
    assert sent[-1]["text"] == "Still want that dentist appointment? Which day works?"
    prompt = fake_llm.requests[-1]["messages"]
    assert "Which day suits you for the dentist?" in prompt[-1]["content"]
    assert len(fake_llm.requests) == calls + 1
    # Followed up once: the next heartbeats see nothing new and never call the model again.
    assert await proactive.heartbeat.beat(owner) == "silent"
    assert await proactive.heartbeat.beat(owner) == "unchanged"
    assert len(fake_llm.requests) == calls + 1
    entry = next(e for e in await proactive.store.entries(user_id=owner) if e.decision == "sent")
    assert entry.ref.startswith("message:") and entry.model_calls == 1 and entry.prompt_tokens > 0


async def test_model_silence_and_garbage_decisions_are_logged_not_sent(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    await _ask_question(fake_llm, fake_tg, count=1)
    fake_llm.push(vllm.text('{"action": "silent", "reason": "user is busy today"}'))
    assert await proactive.heartbeat.beat(owner) == "silent"
    await proactive.store.set_state(owner, fingerprint=None, marker=None)  # force a second look
    fake_llm.push(vllm.text("<think>hmm</think> sure, I'd nudge them {not json"))
    assert await proactive.heartbeat.beat(owner) == "silent"
    reasons = [e.reason for e in await proactive.store.entries(user_id=owner)]
    assert reasons[:2] == ["unreadable decision", "user is busy today"]
    assert len(fake_tg.sent_to(OWNER)) == 1


async def test_quiet_hours_and_pause_block_nudges_but_not_reminders(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(
        _settings(clean_environ, fake_llm, fake_tg, quiet_hours=_quiet_now())
    )
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    await _ask_question(fake_llm, fake_tg, count=1)
    calls = len(fake_llm.requests)
    assert await proactive.heartbeat.beat(owner) == "quiet"
    assert len(fake_llm.requests) == calls
    soon = datetime.now(UTC) + timedelta(seconds=1)
    followup, _ = await proactive.reminders.create(
        user_id=owner,
        text="send Wang the contract",
        timezone="Asia/Shanghai",
        at=soon,
        origin=ReminderOrigin.FOLLOWUP,
    )
    await proactive.reminders.create(
        user_id=owner,
        text="take the pills",
        timezone="Asia/Shanghai",
        at=soon,
    )
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=2, timeout=10)
    await asyncio.sleep(1.0)
    texts = [s["text"] for s in fake_tg.sent_to(OWNER)]
    assert texts[1:] == ["⏰ Reminder: take the pills"], texts
    moved = await proactive.reminders.store.get(followup.id)
    assert moved.status == "active" and moved.next_run_at > datetime.now(UTC) + timedelta(
        minutes=30
    )
    log = await proactive.store.entries(user_id=owner)
    assert log[0].source == "followup" and log[0].decision == "deferred"
    assert log[0].reason == "quiet hours"
    assert len(sent) == 2


async def test_budget_gap_and_repeats_are_enforced_by_the_gate(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(
        _settings(clean_environ, fake_llm, fake_tg, nudge_budget=2, nudge_min_gap_minutes=0)
    )
    proactive = svc.runtime.proactive
    gate = proactive.gate
    owner = (await svc.runtime.stores.identities.owner()).id
    now = datetime.now(UTC)
    verdict = await gate.check(owner, "Did you send Wang the contract?", now=now, tz=SHANGHAI)
    assert verdict.allowed
    await proactive.store.log(
        user_id=owner,
        source="heartbeat",
        decision="sent",
        reason="x",
        text="Did you send Wang the contract?",
    )
    repeat = await gate.check(owner, "Did you send Wang the contract?", now=now, tz=SHANGHAI)
    assert not repeat.allowed and repeat.reason == "repeats a recent nudge"
    other = await gate.check(owner, "Your flight to Chengdu leaves at 18:00.", now=now, tz=SHANGHAI)
    assert other.allowed
    await proactive.store.log(
        user_id=owner, source="heartbeat", decision="sent", reason="x", text="flight"
    )
    spent = await gate.check(owner, "Anything else today?", now=now, tz=SHANGHAI)
    assert not spent.allowed and spent.reason.startswith("daily nudge budget used (2/2)")
    assert spent.retry_at is not None and spent.retry_at > now
    await svc.runtime.controls.pause(owner, SHANGHAI, "en")
    paused = await gate.check(owner, "Anything else?", now=now, tz=SHANGHAI)
    assert paused.reason == "paused by the user"


async def test_pause_and_resume_commands(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg))
    fake_tg.push_command(OWNER, "/pause")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1)
    assert sent[0]["text"].startswith("OK — no unsolicited messages until")
    owner = (await svc.runtime.stores.identities.owner()).id
    state = await svc.runtime.proactive.store.state(owner)
    assert state.paused_until is not None and state.paused_until > datetime.now(UTC)
    fake_tg.push_command(OWNER, "/resume")
    await fake_tg.wait_sent(chat_id=OWNER, count=2)
    assert (await svc.runtime.proactive.store.state(owner)).paused_until is None
    assert fake_llm.requests == []


async def test_idle_heartbeats_wake_up_for_new_activity_and_ripening_questions(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    svc = await service_factory(_settings(clean_environ, fake_llm, fake_tg, followup_after_hours=1))
    proactive = svc.runtime.proactive
    owner = (await svc.runtime.stores.identities.owner()).id
    assert await proactive.heartbeat.beat(owner) == "silent"
    assert await proactive.heartbeat.beat(owner) == "unchanged"
    await _ask_question(fake_llm, fake_tg, count=1)  # new activity, but the question is fresh
    calls = len(fake_llm.requests)
    assert await proactive.heartbeat.beat(owner) == "unchanged"
    state = await proactive.signals.probe(owner)
    assert state.recheck_at is not None
    assert timedelta(minutes=55) < state.recheck_at - datetime.now(UTC) <= timedelta(hours=1)
    # An hour later the question is ripe: time alone wakes the heartbeat, which asks the model.
    real_clock = proactive.heartbeat._clock
    proactive.heartbeat._clock = lambda: real_clock() + timedelta(hours=1, minutes=1)
    fake_llm.push(vllm.text('{"action": "silent", "reason": "not urgent"}'))
    assert await proactive.heartbeat.beat(owner) == "silent"
    assert len(fake_llm.requests) == calls + 1
