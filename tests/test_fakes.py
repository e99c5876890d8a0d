"""Prove the fakes speak the real wire protocols.

The Telegram fake is driven by python-telegram-bot's own ``Bot`` and ``Application`` (so
PTB's request encoding and response parsing are the judge); the vLLM fake by plain httpx,
reading the bytes an OpenAI client would read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Conflict, InvalidToken, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=tg.api_base, base_file_url=tg.file_base) as b:
        yield b


@pytest.fixture
def llm() -> Iterator[FakeVLLM]:
    with FakeVLLM() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def chat(model: str = "qwen3", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}


async def sse(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> list[Any]:
    """Read an SSE stream as an OpenAI client does: decoded chunks, then "[DONE]"."""
    events: list[Any] = []
    async with http.stream("POST", url + "/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
            else:
                assert line == "", line
    return events


def test_server_reachable_from_subprocess(llm: FakeVLLM) -> None:
    code = f"import urllib.request as u; print(u.urlopen('{llm.server.base}/health').status)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "200", out.stderr


def test_fixed_port_lets_a_service_come_back() -> None:
    with FakeVLLM() as first:
        port = first.port
    with FakeVLLM(port=port) as again:
        assert again.url == f"http://127.0.0.1:{port}/v1"
        assert httpx.get(again.server.base + "/health").status_code == 200


# ---------------------------------------------------------------------------- telegram


@pytest.mark.asyncio
async def test_get_me_and_send_message_with_keyboard(tg: FakeTelegram, bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "dadang_test_bot")
    first = await bot.send_message(42, "hello", reply_markup=KEYBOARD)
    second = await bot.send_message(42, "again")
    assert (first.message_id, second.message_id) == (1, 2)
    assert (first.chat.id, first.chat.type, first.text) == (42, "private", "hello")
    assert first.from_user == me
    assert first.reply_markup == KEYBOARD
    assert tg.sent[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]
    }
    assert [s["text"] for s in tg.sent_to(42)] == ["hello", "again"]
    assert [m for m, _ in tg.calls][:2] == ["getMe", "getMe"]  # initialize() + get_me()


@pytest.mark.asyncio
async def test_get_updates_parses_pushed_message_and_offset_confirms(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    pushed = tg.push_message(7, "你好", username="alice", language_code="zh-hans")
    (update,) = await bot.get_updates(timeout=0)
    assert isinstance(update, telegram.Update)
    assert update.update_id == pushed["update_id"]
    message, user = update.message, update.effective_user
    assert message is not None
    assert user is not None
    assert (message.text, message.chat.type, message.chat.id) == ("你好", "private", 7)
    assert (user.id, user.username, user.language_code) == (7, "alice", "zh-hans")
    # Unconfirmed: delivered again. Confirmed by offset: gone.
    assert [u.update_id for u in await bot.get_updates()] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    assert tg.pending_updates() == []
    assert tg.confirmed_offset == update.update_id + 1


@pytest.mark.asyncio
async def test_limit_command_and_callback(tg: FakeTelegram, bot: telegram.Bot) -> None:
    tg.push_command(5, "/start payload")
    sent = await bot.send_message(5, "pick", reply_markup=KEYBOARD)
    tg.push_callback(5, "yes", message_id=sent.message_id)
    (first,) = await bot.get_updates(limit=1)
    assert first.message is not None
    assert first.message.text == "/start payload"
    assert first.message.parse_entities(["bot_command"]) == {first.message.entities[0]: "/start"}
    _, second = await bot.get_updates(offset=first.update_id)
    query = second.callback_query
    assert query is not None
    assert query.message is not None
    assert (query.data, query.message.message_id) == ("yes", sent.message_id)
    assert await bot.answer_callback_query(query.id)
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await bot.answer_callback_query("999")


@pytest.mark.asyncio
async def test_application_polling_round_trip(tg: FakeTelegram) -> None:
    """The production path: ApplicationBuilder + start_polling + a handler that replies."""

    async def echo(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        assert update.effective_chat is not None
        text = "got: " + (update.effective_message.text or "")
        await context.bot.send_message(update.effective_chat.id, text)

    app = ApplicationBuilder().token(tg.token).base_url(tg.api_base).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=5)
        tg.push_message(21, "ping")
        tg.push_update({"nonsense": True})  # garbage must not stop the loop
        tg.push_message(21, "pong")
        sent = await tg.wait_sent(chat_id=21, count=2, timeout=5)
        await app.updater.stop()
        await app.stop()
    assert [s["text"] for s in sent] == ["got: ping", "got: pong"]
    assert [m for m, _ in tg.calls][:3] == ["getMe", "deleteWebhook", "getUpdates"]


@pytest.mark.asyncio
async def test_long_poll_wakes_promptly_on_push(tg: FakeTelegram, bot: telegram.Bot) -> None:
    task = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.3)
    assert not task.done()
    pushed_at = time.monotonic()
    threading.Thread(target=tg.push_message, args=(3, "wake")).start()
    (update,) = await asyncio.wait_for(task, 2)
    assert time.monotonic() - pushed_at < 0.3
    assert update.message is not None
    assert update.message.text == "wake"


@pytest.mark.asyncio
async def test_long_poll_times_out_empty_and_newer_poll_wins(
    tg: FakeTelegram, bot: telegram.Bot
) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 < time.monotonic() - started < 2
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    # PTB's get_updates pool holds one connection: a second instance is a second Bot.
    async with telegram.Bot(tg.token, base_url=tg.api_base) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await older


@pytest.mark.asyncio
async def test_injected_429_surfaces_as_retry_after(
    tg: FakeTelegram, bot: telegram.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, PTB 22 warns in RetryAfter (an error under filterwarnings=error).
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    tg.fail_next("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1, "hi")
    assert caught.value.retry_after == dt.timedelta(seconds=3)
    assert (await bot.send_message(1, "hi")).text == "hi"  # only the next call failed
    assert len(tg.sent) == 1


@pytest.mark.asyncio
async def test_parse_errors_and_limits(tg: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: Character '\.' is reserved"):
        await bot.send_message(1, "Done. Thanks!", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: Can't find end of Bold"):
        await bot.send_message(1, "*bold", parse_mode="MarkdownV2")
    good_md = r"*Done*\. [site](https://x.io/a_b) `a.b` ok\!"
    assert (
        await bot.send_message(1, good_md, parse_mode="MarkdownV2")
    ).text == "Done. site a.b ok!"
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: Unmatched end tag"):
        await bot.send_message(1, "<b>bold</i>", parse_mode="HTML")
    assert (await bot.send_message(1, "<b>a &lt; b</b>", parse_mode="HTML")).text == "a < b"
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(1, "x" * 4097)
    assert len((await bot.send_message(1, "😀" * 2048)).text or "") == 2048  # 4096 UTF-16 units
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(1, "")
    assert [s["text"] for s in tg.sent][:2] == [good_md, "<b>a &lt; b</b>"]


@pytest.mark.asyncio
async def test_edit_document_and_errors(tg: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(9, "draft")
    edited = await bot.edit_message_text("final", chat_id=9, message_id=msg.message_id)
    assert isinstance(edited, telegram.Message)
    assert (edited.text, edited.edit_date is not None) == ("final", True)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("final", chat_id=9, message_id=msg.message_id)
    assert await bot.send_chat_action(9, "typing")
    doc = await bot.send_document(9, b"report body", filename="r.txt", caption="the report")
    assert doc.document is not None
    assert (doc.document.file_name, doc.caption) == ("r.txt", "the report")
    assert tg.sent_to(9, method="sendDocument")[0]["document"]["content"] == b"report body"
    file = await bot.get_file(doc.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"report body"
    assert await bot.set_my_commands([("start", "Start")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.delete_message(9, msg.message_id)
    wrong = telegram.Bot("999:wrong", base_url=tg.api_base)
    with pytest.raises(InvalidToken):
        await wrong.initialize()  # get_me
    await wrong.request.shutdown()  # initialize() failed, so shutdown() would skip this
    async with httpx.AsyncClient() as client:
        unknown = await client.post(f"{tg.api_base}{tg.token}/noSuchMethod")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


@pytest.mark.asyncio
async def test_wait_sent_async_and_sync(tg: FakeTelegram, bot: telegram.Bot) -> None:
    async def later() -> None:
        await asyncio.sleep(0.1)
        await bot.send_message(11, "one")
        await bot.send_message(11, "two")

    sender = asyncio.create_task(later())
    got = await tg.wait_sent(chat_id=11, count=2, timeout=5)
    assert [s["text"] for s in got] == ["one", "two"]
    await sender
    assert len(await asyncio.to_thread(tg.wait_sent_sync, chat_id=11, count=2, timeout=1)) == 2
    with pytest.raises(TimeoutError, match="one"):
        await tg.wait_sent(chat_id=11, count=3, timeout=0.2)


# ---------------------------------------------------------------------------- vLLM


@pytest.mark.asyncio
async def test_health_and_models(llm: FakeVLLM, http: httpx.AsyncClient) -> None:
    health = await http.get(llm.server.base + "/health")
    assert (health.status_code, health.content) == (200, b"")
    models = (await http.get(llm.url + "/models")).json()
    assert models["object"] == "list"
    card = models["data"][0]
    assert (card["id"], card["object"], card["owned_by"]) == ("qwen3", "model", "vllm")
    assert (card["max_model_len"], card["root"][:5]) == (32768, "Qwen/")
    assert llm.models_calls == 1


@pytest.mark.asyncio
async def test_non_stream_text_reasoning_and_echo(llm: FakeVLLM, http: httpx.AsyncClient) -> None:
    llm.push(vllm.text("Hi!", reasoning="greet back"))
    resp = await http.post(llm.url + "/chat/completions", json=chat())
    body = resp.json()
    assert (body["object"], body["model"]) == ("chat.completion", "qwen3")
    choice = body["choices"][0]
    message = choice["message"]
    assert (message["content"], message["reasoning"], message["tool_calls"]) == (
        "Hi!",
        "greet back",
        [],
    )
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert float(resp.headers["x-fake-held-ms"]) >= 0
    echo = (await http.post(llm.url + "/chat/completions", json=chat())).json()
    assert echo["choices"][0]["message"]["content"] == "echo: hello there"
    assert [r["messages"][0]["content"] for r in llm.requests] == ["hello there"] * 2
    llm.reset()
    assert (llm.requests, llm.held_ms) == ([], [])


@pytest.mark.asyncio
async def test_stream_text_reassembles_without_usage(
    llm: FakeVLLM, http: httpx.AsyncClient
) -> None:
    answer = "The weather in Paris is sunny and 21 degrees today."
    llm.push(vllm.text(answer, reasoning="User wants weather"))
    events = await sse(http, llm.url, chat(stream=True))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]  # no usage chunk: include_usage was not asked for
    assert all(c["object"] == "chat.completion.chunk" and len(c["choices"]) == 1 for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    content = [d.get("content") or "" for d in deltas]
    assert "".join(content) == answer
    assert sum(1 for piece in content if piece) > 3
    assert "".join(d.get("reasoning") or "" for d in deltas) == "User wants weather"
    finish = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finish == [None] * (len(chunks) - 1) + ["stop"]


@pytest.mark.asyncio
async def test_stream_tool_calls_reassemble_by_index_with_usage(
    llm: FakeVLLM, http: httpx.AsyncClient
) -> None:
    llm.push(vllm.tool_calls([("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]))
    events = await sse(http, llm.url, chat(stream=True, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == []
    assert events[-2]["usage"]["total_tokens"] > 0
    calls: dict[int, dict[str, Any]] = {}
    fragments: dict[int, int] = {}
    for chunk in events[:-2]:
        for frag in chunk["choices"][0]["delta"].get("tool_calls", []):
            index = frag["index"]
            if index not in calls:
                assert frag["id"].startswith("chatcmpl-tool-")
                assert frag["type"] == "function"
                calls[index] = {"name": frag["function"]["name"], "arguments": ""}
            else:
                assert "id" not in frag
                assert "name" not in frag["function"]
            calls[index]["arguments"] += frag["function"].get("arguments", "")
            fragments[index] = fragments.get(index, 0) + 1
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert json.loads(calls[1]["arguments"]) == {"tz": "CET"}
    assert min(fragments.values()) >= 3  # header + at least two argument fragments
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.asyncio
async def test_non_stream_tool_calls_raw_and_legacy_reasoning(http: httpx.AsyncClient) -> None:
    with FakeVLLM(reasoning_field="reasoning_content") as fake:
        fake.push(
            vllm.tool_calls([("search", '{"q": "broken')]),
            vllm.raw_content('<tool_call>{"name": "search", bad</tool_call>'),
            vllm.text("42", reasoning="math"),
        )
        url = fake.url + "/chat/completions"
        call = (await http.post(url, json=chat())).json()["choices"][0]
        assert (call["finish_reason"], call["message"]["content"]) == ("tool_calls", None)
        tool = call["message"]["tool_calls"][0]
        assert (tool["id"][:14], tool["type"]) == ("chatcmpl-tool-", "function")
        assert tool["function"] == {"name": "search", "arguments": '{"q": "broken'}
        raw = (await http.post(url, json=chat())).json()["choices"][0]
        assert raw["message"]["content"].startswith("<tool_call>")
        assert raw["finish_reason"] == "stop"
        legacy = (await http.post(url, json=chat())).json()["choices"][0]["message"]
        assert legacy["reasoning_content"] == "math"
        assert "reasoning" not in legacy


@pytest.mark.asyncio
async def test_errors_auth_and_hang(http: httpx.AsyncClient) -> None:
    with FakeVLLM(api_key="sekret") as fake:
        url = fake.url + "/chat/completions"
        denied = await http.post(url, json=chat())
        assert (denied.status_code, denied.json()) == (401, {"error": "Unauthorized"})
        assert (await http.get(fake.server.base + "/health")).status_code == 200
        auth = {"Authorization": "Bearer sekret"}
        fake.push(
            vllm.error(400, "context too long"),
            vllm.error(429, "busy", retry_after=2),
            vllm.error(500, "boom", legacy=True),
            vllm.hang(5),
        )
        bad = await http.post(url, json=chat(), headers=auth)
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert (error["message"], error["type"], error["code"]) == (
            "context too long",
            "BadRequestError",
            400,
        )
        busy = await http.post(url, json=chat(), headers=auth)
        assert (busy.status_code, busy.headers["retry-after"]) == (429, "2")
        legacy = await http.post(url, json=chat(), headers=auth)
        assert (legacy.status_code, legacy.json()["object"]) == (500, "error")
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, json=chat(), headers=auth, timeout=0.3)
        missing = await http.post(url, json=chat(model="gpt-4"), headers=auth)
        assert (missing.status_code, missing.json()["error"]["type"]) == (404, "NotFoundError")


@pytest.mark.asyncio
async def test_200_concurrent_requests_overlap() -> None:
    # Ten clients: one httpx pool with 200 connections is itself the bottleneck (~1-5 s).
    clients = [httpx.AsyncClient(timeout=10) for _ in range(10)]
    with FakeVLLM(latency=0.2) as fake:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(clients[i % 10].post(fake.url + "/chat/completions", json=chat()) for i in range(200))
        )
        elapsed = time.monotonic() - started
    for client in clients:
        await client.aclose()
    assert all(r.status_code == 200 for r in responses)
    assert elapsed < 2.0, elapsed
    assert len(fake.held_ms) == 200
    assert min(fake.held_ms) >= 200
    assert all(float(r.headers["x-fake-held-ms"]) >= 200 for r in responses)
