"""End to end through Telegram: fake Bot API in, real runtime, fake vLLM, reply out."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

OWNER = 1001
STRANGER = 2002


async def test_allowed_user_gets_the_model_reply_in_the_same_chat(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    fake_llm.push(vllm.hang(1.5, vllm.text("你好！我是搭档。")))  # slow enough for "typing…"
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    fake_tg.push_message(OWNER, "你好", language_code="zh-hans")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1)
    assert sent[0]["text"] == "你好！我是搭档。"
    assert any(method == "sendChatAction" for method, _ in fake_tg.calls)
    prompt = fake_llm.requests[-1]["messages"]
    assert prompt[0]["role"] == "system" and "Dadang" in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": "你好"}


async def test_unknown_user_gets_a_pairing_code_and_no_model_call_until_approved(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    await service_factory(make_settings(clean_environ, llm=fake_llm, tg=fake_tg))
    fake_tg.push_message(STRANGER, "hello?")
    fake_tg.push_message(STRANGER, "anyone?")
    prompt = (await fake_tg.wait_sent(chat_id=STRANGER, count=1))[0]["text"]
    assert "dadang pair approve" in prompt
    code = prompt.rsplit(" ", 1)[-1].strip()
    await asyncio.sleep(0.5)
    assert len(fake_tg.sent_to(STRANGER)) == 1  # told once, not per message
    assert fake_llm.requests == []

    approve = await asyncio.to_thread(  # a real `dadang pair approve` process
        subprocess.run,
        [sys.executable, "-m", "agent.cli.main", "pair", "approve", code],
        capture_output=True,
        text=True,
        env={**os.environ, "DADANG_HOME": str(clean_environ)},
        check=False,
    )
    assert approve.returncode == 0, approve.stderr
    # The running service delivers the "you're in" notice written by the CLI.
    await fake_tg.wait_sent(chat_id=STRANGER, count=2, timeout=15)
    fake_tg.push_message(STRANGER, "now?")
    replies = await fake_tg.wait_sent(chat_id=STRANGER, count=3)
    assert replies[-1]["text"] == "echo: now?"


async def test_same_update_delivered_twice_is_processed_once(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    update = fake_tg.push_message(OWNER, "once please")
    fake_tg.push_update(dict(update, update_id=update["update_id"] + 100))
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    await asyncio.sleep(0.5)
    assert [s["text"] for s in fake_tg.sent_to(OWNER)] == ["echo: once please"]
    assert len(fake_llm.requests) == 1


async def test_twenty_conversations_run_concurrently(
    clean_environ: Path, fake_tg: FakeTelegram, service_factory
) -> None:
    users = list(range(5000, 5020))
    with FakeVLLM(latency=1.0) as slow:
        await service_factory(
            make_settings(clean_environ, llm=slow, tg=fake_tg, telegram_allowed_users=users)
        )
        started = time.perf_counter()
        for user in users:
            fake_tg.push_message(user, f"hi from {user}")
        for user in users:
            await fake_tg.wait_sent(chat_id=user, count=1, timeout=20)
        elapsed = time.perf_counter() - started
    # One turn takes 1 s; twenty serialised turns would take 20 s.
    assert elapsed < 6, f"20 conversations took {elapsed:.1f} s"


async def test_messages_of_one_conversation_are_answered_in_order(
    clean_environ: Path, fake_tg: FakeTelegram, service_factory
) -> None:
    with FakeVLLM(latency=0.2) as slow:
        await service_factory(
            make_settings(clean_environ, llm=slow, tg=fake_tg, telegram_allowed_users=[OWNER])
        )
        for i in range(4):
            fake_tg.push_message(OWNER, f"m{i}")
        sent = await fake_tg.wait_sent(chat_id=OWNER, count=4)
    assert [s["text"] for s in sent] == [f"echo: m{i}" for i in range(4)]


async def test_model_down_at_start_degrades_health_tells_once_and_answers_later(
    clean_environ: Path, fake_tg: FakeTelegram, service_factory
) -> None:
    later = FakeVLLM()
    later.start()
    port = later.port
    later.stop()  # nothing listens there now
    svc = await service_factory(
        make_settings(
            clean_environ,
            tg=fake_tg,
            telegram_allowed_users=[OWNER],
            llm_base_url=f"http://127.0.0.1:{port}/v1",
            llm_max_retries=1,
        )
    )
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{svc.base}/healthz")).json()
    assert health["status"] == "degraded" and health["llm"]["ok"] is False
    fake_tg.push_message(OWNER, "first")
    fake_tg.push_message(OWNER, "second")
    notice = await fake_tg.wait_sent(chat_id=OWNER, count=1)
    assert "unavailable" in notice[0]["text"]
    await asyncio.sleep(0.5)
    assert len(fake_tg.sent_to(OWNER)) == 1  # once, not per message

    with FakeVLLM(port=port) as back:
        sent = await fake_tg.wait_sent(chat_id=OWNER, count=3, timeout=30)
        assert [s["text"] for s in sent[1:]] == ["echo: first", "echo: second"]
        assert len(back.requests) == 2
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{svc.base}/metrics")).text
    assert "dadang_messages_in_total" in metrics


async def test_server_errors_then_apology_and_the_message_is_answered_when_back(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    fake_llm.push(*[vllm.error(500, "engine dead") for _ in range(3)])
    await service_factory(
        make_settings(
            clean_environ,
            llm=fake_llm,
            tg=fake_tg,
            telegram_allowed_users=[OWNER],
            llm_max_retries=2,
        )
    )
    fake_tg.push_message(OWNER, "are you there")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=2, timeout=30)
    assert "unavailable" in sent[0]["text"]
    assert sent[1]["text"] == "echo: are you there"


async def test_tool_loop_saves_a_note_and_lists_it(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    fake_llm.push(
        vllm.tool_calls([("remember_note", {"text": "WiFi password is on the fridge"})]),
        vllm.text("Saved."),
        vllm.tool_calls([("list_notes", {}), ("current_time", '{"timezone": "Asia/Shanghai"')]),
        vllm.text("Here are your notes."),
    )
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    fake_tg.push_message(OWNER, "remember the wifi password is on the fridge")
    await fake_tg.wait_sent(chat_id=OWNER, count=1)
    fake_tg.push_message(OWNER, "what are my notes and what time is it?")
    await fake_tg.wait_sent(chat_id=OWNER, count=2)
    tool_results = [m for m in fake_llm.requests[3]["messages"] if m["role"] == "tool"]
    assert "WiFi password is on the fridge" in tool_results[0]["content"]
    assert "Asia/Shanghai" in tool_results[1]["content"]
    # History of the first exchange is in the second turn's prompt.
    contents = [m["content"] for m in fake_llm.requests[2]["messages"]]
    assert "remember the wifi password is on the fridge" in contents and "Saved." in contents


async def test_long_reply_is_split_and_bad_markup_falls_back_to_plain_text(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    long_text = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(12))
    fake_llm.push(vllm.text(long_text))
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    fake_tg.push_message(OWNER, "write a lot")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=3)
    await asyncio.sleep(0.3)
    parts = fake_tg.sent_to(OWNER)
    assert all(len(p["text"]) <= 4096 for p in parts)
    assert " ".join(p["text"] for p in parts).split() == long_text.split()
    assert sent[0]["parse_mode"] == "HTML"


async def test_garbage_updates_unknown_commands_and_huge_messages_get_clear_answers(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    await service_factory(
        make_settings(
            clean_environ,
            llm=fake_llm,
            tg=fake_tg,
            telegram_allowed_users=[OWNER],
            max_inbound_chars=1000,
        )
    )
    fake_tg.push_update({"message": {"message_id": "x", "chat": "not a chat"}})
    fake_tg.push_update({"edited_channel_post": 12})
    fake_tg.push_command(OWNER, "/frobnicate")
    fake_tg.push_message(OWNER, "x" * 5000)
    fake_tg.push_command(OWNER, "/start")
    fake_tg.push_message(OWNER, "still alive?")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=4)
    texts = [s["text"] for s in sent]
    assert "/frobnicate" in texts[0]
    assert "too long" in texts[1] and "5000" in texts[1]
    assert "Dadang" in texts[2]
    assert texts[3] == "echo: still alive?"
    assert len(fake_llm.requests) == 1
    assert fake_tg.pending_updates() == [] or all(
        u["update_id"] >= fake_tg.confirmed_offset for u in fake_tg.pending_updates()
    )


async def test_telegram_flood_control_is_retried(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    fake_tg.fail_next("sendMessage", retry_after=1)
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    fake_tg.push_message(OWNER, "hi")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1, timeout=15)
    assert sent[0]["text"] == "echo: hi"


async def test_wrong_token_keeps_the_service_up_and_reports_it(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    settings = make_settings(clean_environ, llm=fake_llm, tg=fake_tg)
    settings = settings.model_copy(
        update={"telegram_token": type(settings.telegram_token)("9:bad")}
    )
    svc = await service_factory(settings)
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{svc.base}/healthz")).json()
    assert health["status"] == "degraded"
    assert "DADANG_TELEGRAM_TOKEN" in health["connectors"]["telegram"]["error"]
    assert health["database"]["ok"] and health["llm"]["ok"]


async def test_the_whole_loop_runs_on_postgresql(
    pg_url: str, clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    # pg_url first: the database must outlive the service, which is stopped before it is dropped.
    fake_llm.push(
        vllm.tool_calls([("remember_note", {"text": "parking spot B12"})]), vllm.text("Noted.")
    )
    svc = await service_factory(
        make_settings(
            clean_environ,
            llm=fake_llm,
            tg=fake_tg,
            telegram_allowed_users=[OWNER],
            database_url=pg_url,
        )
    )
    fake_tg.push_message(OWNER, "remember: parking spot B12")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1)
    assert sent[0]["text"] == "Noted."
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{svc.base}/healthz")).json()
        metrics = (await http.get(f"{svc.base}/metrics")).text
    assert health["status"] == "ok" and health["database"]["ok"]
    assert 'dadang_messages_out_total{channel="telegram"} 1.0' in metrics
    assert 'dadang_messages_in_total{channel="telegram"} 1.0' in metrics
    assert 'dadang_llm_request_seconds_count{outcome="ok"} 2.0' in metrics
    assert 'dadang_llm_tokens_total{kind="prompt"}' in metrics


async def test_markup_telegram_cannot_parse_is_resent_as_plain_text(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    # Mis-nested emphasis renders to <b>…<i>…</b>…</i>, which Telegram refuses to parse.
    fake_llm.push(vllm.text("**bold *both** italic*"))
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    fake_tg.push_message(OWNER, "format something")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1)
    assert sent[0]["text"] == "**bold *both** italic*"
    assert sent[0]["parse_mode"] is None
    refused = [p for m, p in fake_tg.calls if m == "sendMessage" and p.get("parse_mode") == "HTML"]
    assert len(refused) == 1


async def test_a_reply_to_an_earlier_message_carries_its_quote(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory
) -> None:
    fake_llm.push(vllm.text("Dinner is at 7."))
    await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    fake_tg.push_message(OWNER, "when is dinner?")
    sent = await fake_tg.wait_sent(chat_id=OWNER, count=1)
    fake_tg.push_message(OWNER, "move it to 8", reply_to_message_id=sent[0]["message_id"])
    await fake_tg.wait_sent(chat_id=OWNER, count=2)
    last_user = fake_llm.requests[-1]["messages"][-1]["content"]
    assert "Dinner is at 7." in last_user and "move it to 8" in last_user
