"""The vLLM client against a loopback server speaking vLLM's wire protocol."""

from __future__ import annotations

import pytest

from agent.llm import LLMClient, ModelRequestError, ModelUnavailable
from tests.fakes import vllm
from tests.fakes.vllm import FakeVLLM


def client(fake: FakeVLLM, **kwargs: object) -> LLMClient:
    options: dict[str, object] = {"base_url": fake.url, "backoff_base": 0.01, "max_retries": 3}
    options.update(kwargs)
    return LLMClient(**options)  # type: ignore[arg-type]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.mark.parametrize("stream", [True, False])
async def test_text_answer_with_reasoning_kept_apart(fake_llm: FakeVLLM, stream: bool) -> None:
    fake_llm.push(vllm.text("Paris is sunny today.", reasoning="User wants weather"))
    llm = client(fake_llm)
    try:
        answer = await llm.chat([{"role": "user", "content": "hi"}], stream=stream)
    finally:
        await llm.aclose()
    assert answer.content == "Paris is sunny today."
    assert answer.reasoning == "User wants weather"
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    assert answer.model == "qwen3"


async def test_model_defaults_to_the_first_listed_and_thinking_is_sent(fake_llm: FakeVLLM) -> None:
    llm = client(fake_llm)
    try:
        await llm.chat([{"role": "user", "content": "hi"}], thinking=False)
    finally:
        await llm.aclose()
    body = fake_llm.requests[-1]
    assert body["model"] == "qwen3"
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_call_split_across_chunks_is_reassembled(
    fake_llm: FakeVLLM, stream: bool
) -> None:
    fake_llm.push(
        vllm.tool_calls(
            [("get_weather", {"city": "北京 Beijing"}), ("get_weather", {"city": "Paris"})]
        )
    )
    llm = client(fake_llm)
    try:
        answer = await llm.chat(
            [{"role": "user", "content": "weather?"}], tools=TOOLS, stream=stream
        )
    finally:
        await llm.aclose()
    assert [c.arguments for c in answer.tool_calls] == [{"city": "北京 Beijing"}, {"city": "Paris"}]
    assert answer.tool_calls[0].id.startswith("chatcmpl-tool-")
    assert answer.finish_reason == "tool_calls"
    assert fake_llm.requests[-1]["tool_choice"] == "auto"


async def test_rate_limit_then_success(fake_llm: FakeVLLM) -> None:
    fake_llm.push(vllm.error(429, "slow down", retry_after=0.05), vllm.text("ok"))
    llm = client(fake_llm)
    try:
        answer = await llm.chat([{"role": "user", "content": "hi"}])
    finally:
        await llm.aclose()
    assert answer.content == "ok"
    assert answer.calls == 2


async def test_repeated_server_errors_become_model_unavailable(fake_llm: FakeVLLM) -> None:
    fake_llm.push(*[vllm.error(500, "boom", legacy=True) for _ in range(4)])
    llm = client(fake_llm, max_retries=3)
    try:
        with pytest.raises(ModelUnavailable, match="boom"):
            await llm.chat([{"role": "user", "content": "hi"}])
    finally:
        await llm.aclose()
    assert len(fake_llm.requests) == 4


async def test_context_too_long_is_not_retried(fake_llm: FakeVLLM) -> None:
    fake_llm.push(vllm.error(400, "maximum context length is 32768 tokens"))
    llm = client(fake_llm)
    try:
        with pytest.raises(ModelRequestError, match="maximum context length") as info:
            await llm.chat([{"role": "user", "content": "hi"}])
    finally:
        await llm.aclose()
    assert info.value.status == 400
    assert len(fake_llm.requests) == 1


async def test_unreachable_server_is_model_unavailable() -> None:
    llm = LLMClient(
        base_url="http://127.0.0.1:9/v1",
        model="qwen3",
        max_retries=1,
        backoff_base=0.01,
        connect_timeout=0.5,
    )
    try:
        with pytest.raises(ModelUnavailable, match="127.0.0.1:9"):
            await llm.chat([{"role": "user", "content": "hi"}])
    finally:
        await llm.aclose()


async def test_timeout_is_retried(fake_llm: FakeVLLM) -> None:
    fake_llm.push(vllm.hang(2.0, vllm.text("late")), vllm.text("on time"))
    llm = client(fake_llm, timeout=0.5)
    try:
        answer = await llm.chat([{"role": "user", "content": "hi"}])
    finally:
        await llm.aclose()
    assert answer.content == "on time"


async def test_sloppy_tool_arguments_are_repaired_without_asking_again(fake_llm: FakeVLLM) -> None:
    fake_llm.push(vllm.tool_calls([("get_weather", "{'city': 'Paris',}")]))
    llm = client(fake_llm)
    try:
        answer = await llm.chat([{"role": "user", "content": "weather?"}], tools=TOOLS)
    finally:
        await llm.aclose()
    assert answer.tool_calls[0].arguments == {"city": "Paris"}
    assert len(fake_llm.requests) == 1


async def test_broken_tool_arguments_make_the_model_try_once_more(fake_llm: FakeVLLM) -> None:
    fake_llm.push(
        vllm.tool_calls([("get_weather", '{"city": Par<<is')]),
        vllm.tool_calls([("get_weather", {"city": "Paris"})]),
    )
    llm = client(fake_llm)
    try:
        answer = await llm.chat([{"role": "user", "content": "weather?"}], tools=TOOLS)
    finally:
        await llm.aclose()
    assert answer.tool_calls[0].arguments == {"city": "Paris"}
    assert len(fake_llm.requests) == 2
    assert "could not be used" in fake_llm.requests[1]["messages"][-1]["content"]


async def test_hermes_tool_call_left_in_content_is_recovered(fake_llm: FakeVLLM) -> None:
    fake_llm.push(
        vllm.raw_content(
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        )
    )
    llm = client(fake_llm)
    try:
        answer = await llm.chat([{"role": "user", "content": "weather?"}], tools=TOOLS)
    finally:
        await llm.aclose()
    assert answer.content == ""
    assert answer.tool_calls[0].name == "get_weather"
    assert answer.tool_calls[0].arguments == {"city": "Paris"}


async def test_think_blocks_never_reach_the_reply(fake_llm: FakeVLLM) -> None:
    fake_llm.push(
        vllm.raw_content("<think>The user greets me.</think>\n\n你好！"),
        vllm.raw_content("The template opened it.</think>Hello!"),
    )
    llm = client(fake_llm)
    try:
        first = await llm.chat([{"role": "user", "content": "你好"}])
        second = await llm.chat([{"role": "user", "content": "hi"}])
    finally:
        await llm.aclose()
    assert (first.content, first.reasoning) == ("你好！", "The user greets me.")
    assert (second.content, second.reasoning) == ("Hello!", "The template opened it.")


async def test_legacy_reasoning_content_field(fake_llm: FakeVLLM) -> None:
    with FakeVLLM(reasoning_field="reasoning_content") as old:
        old.push(vllm.text("answer", reasoning="old field"))
        llm = client(old)
        try:
            answer = await llm.chat([{"role": "user", "content": "hi"}])
        finally:
            await llm.aclose()
    assert (answer.content, answer.reasoning) == ("answer", "old field")


async def test_api_key_is_sent(fake_llm: FakeVLLM) -> None:
    with FakeVLLM(api_key="sekrit-key") as guarded:
        bad = client(guarded)
        good = client(guarded, api_key="sekrit-key")
        try:
            with pytest.raises(ModelRequestError, match="DADANG_LLM_API_KEY"):
                await bad.chat([{"role": "user", "content": "hi"}])
            assert (await good.chat([{"role": "user", "content": "hi"}])).content == "echo: hi"
        finally:
            await bad.aclose()
            await good.aclose()
