"""`dadang doctor` against a model endpoint: each way vLLM can be misconfigured, and its fix.

The fake vLLM is started the way an operator might have started the real one (see
tests/fakes/vllm_serving.py); the doctor runs through the real CLI and must name the flag or
setting to change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent.cli.main import app
from tests.conftest import free_port
from tests.fakes import vllm
from tests.fakes.vllm import FakeVLLM
from tests.fakes.vllm_serving import AUTO_TOOL_CHOICE_REFUSED

FIX_TOOLS = "start vLLM with --enable-auto-tool-choice --tool-call-parser hermes"


def doctor(url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(app, ["doctor", *args], env={"DADANG_LLM_BASE_URL": url, **env})


def report(result: Result) -> dict[str, str]:
    """Check name → "<mark> <detail>" for each line of the human report."""
    lines = {}
    for line in result.stdout.splitlines():
        name, _, detail = line[2:].partition(": ")
        lines[name] = f"{line[0]} {detail}"
    return lines


@pytest.fixture
def good() -> Iterator[FakeVLLM]:
    """vllm serve Qwen/Qwen3-8B with every flag Dadang needs; the model thinks and calls tools."""
    with FakeVLLM(root="Qwen/Qwen3-8B", thinks=True, responder=vllm.use_offered_tool) as server:
        yield server


def test_a_good_endpoint_reports_model_context_tools_latency_and_reasoning(
    clean_environ: Path, good: FakeVLLM
) -> None:
    result = doctor(good.url)
    assert result.exit_code == 0, result.output
    checks = report(result)
    assert checks["llm"] == f"✓ {good.url} serves qwen3 (Qwen/Qwen3-8B)"
    assert checks["context"] == "✓ max_model_len 32768 (Dadang needs up to 11048)"
    assert checks["tool calling"] == "✓ the model called the probe tool"
    assert checks["latency"].startswith("✓ first token ")
    assert "short answer complete in" in checks["latency"]
    assert checks["reasoning"] == "✓ separated: thinking arrives in `reasoning`"
    tool_probe, short, thinking = good.requests
    assert tool_probe["tool_choice"] == "auto" and tool_probe["tools"][0]["function"]["name"]
    assert short["stream"] is True and short["chat_template_kwargs"] == {"enable_thinking": False}
    assert thinking["chat_template_kwargs"] == {"enable_thinking": True}


@pytest.mark.parametrize("stream", ["false", "true"])
def test_a_server_started_without_auto_tool_choice_is_told_the_flags(
    clean_environ: Path, stream: str
) -> None:
    with FakeVLLM(enable_auto_tool_choice=False, tool_call_parser=None) as server:
        result = doctor(server.url, DADANG_LLM_STREAM=stream)
    assert result.exit_code == 1
    checks = report(result)
    assert checks["tool calling"] == (
        f'✗ vLLM refused tool_choice "auto": {AUTO_TOOL_CHOICE_REFUSED}; fix: {FIX_TOOLS}'
    )
    assert checks["latency"].startswith("✓") and checks["reasoning"].startswith("✓")


@pytest.mark.parametrize("stream", ["false", "true"])
def test_a_tool_call_left_as_text_means_the_parser_is_missing_or_wrong(
    clean_environ: Path, stream: str
) -> None:
    with FakeVLLM(tool_call_parser="mistral", responder=vllm.use_offered_tool) as server:
        result = doctor(server.url, DADANG_LLM_STREAM=stream)
    assert result.exit_code == 1
    line = report(result)["tool calling"]
    assert line.startswith("✗ the tool call came back as <tool_call> text in the content")
    assert line.endswith(f"; fix: {FIX_TOOLS}")


def test_a_model_that_answers_in_prose_fails_tool_calling(
    clean_environ: Path, fake_llm: FakeVLLM
) -> None:
    result = doctor(fake_llm.url)  # the default fake only echoes
    assert result.exit_code == 1
    assert report(result)["tool calling"].startswith("✗ no tool call came back, only text: ")


def test_a_thinking_model_without_reasoning_parser_is_told_to_add_it(clean_environ: Path) -> None:
    with FakeVLLM(reasoning_parser=None, thinks=True, responder=vllm.use_offered_tool) as server:
        result = doctor(server.url)
    assert result.exit_code == 0, result.output  # advice, not a failure: Dadang strips <think>
    line = report(result)["reasoning"]
    assert line.startswith("! the model thinks, but <think>…</think> stays in the content")
    assert line.endswith("; fix: add --reasoning-parser qwen3 to vllm serve")


def test_an_instruct_model_that_never_thinks_is_fine(clean_environ: Path) -> None:
    with FakeVLLM(responder=vllm.use_offered_tool) as server:
        result = doctor(server.url)
    assert result.exit_code == 0, result.output
    assert report(result)["reasoning"].startswith("✓ model does not think (fine)")


def test_reasoning_content_of_an_older_vllm_counts_as_separated(clean_environ: Path) -> None:
    with FakeVLLM(
        reasoning_field="reasoning_content", thinks=True, responder=vllm.use_offered_tool
    ) as server:
        result = doctor(server.url)
    assert report(result)["reasoning"] == (
        "✓ separated: thinking arrives in `reasoning_content` (an older vLLM; Dadang reads it too)"
    )


def test_an_endpoint_that_is_down_is_one_clear_line(clean_environ: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = doctor(url)
    assert result.exit_code == 1
    checks = report(result)
    assert checks["llm"].startswith(f"✗ nothing answers at {url} (connection refused); fix: ")
    assert "DADANG_LLM_BASE_URL" in checks["llm"]
    assert "tool calling" not in checks and "context" not in checks
    assert checks["telegram"].startswith("✓")  # the other checks still run


def test_a_base_url_without_v1_is_pointed_at_v1(clean_environ: Path, fake_llm: FakeVLLM) -> None:
    result = doctor(fake_llm.server.base)
    assert report(result)["llm"] == (
        f"✗ {fake_llm.server.base}/models does not exist (HTTP 404); fix: DADANG_LLM_BASE_URL "
        "must be the OpenAI base URL ending in /v1, e.g. http://gpu-box:8000/v1"
    )


def test_api_key_missing_wrong_and_right(clean_environ: Path) -> None:
    fix = "fix: set DADANG_LLM_API_KEY to the value vLLM was started with (--api-key)"
    with FakeVLLM(api_key="sesame", responder=vllm.use_offered_tool) as server:
        missing = doctor(server.url)
        wrong = doctor(server.url, DADANG_LLM_API_KEY="open-up")
        right = doctor(server.url, DADANG_LLM_API_KEY="sesame")
    assert report(missing)["llm"] == f"✗ the server wants an API key (HTTP 401); {fix}"
    assert report(wrong)["llm"] == f"✗ the server refused DADANG_LLM_API_KEY (HTTP 401); {fix}"
    assert "open-up" not in wrong.output
    assert right.exit_code == 0, right.output


def test_a_model_that_does_not_answer_times_out_and_skips_the_rest(clean_environ: Path) -> None:
    with FakeVLLM() as server:
        server.push(vllm.hang(10))
        url = server.url
        result = doctor(url, DADANG_LLM_TIMEOUT="0.5")
    assert result.exit_code == 1
    checks = report(result)
    assert checks["tool calling"].startswith(
        f"✗ {url} accepted the request but did not answer within 0.5 s; fix: "
    )
    assert "raise DADANG_LLM_TIMEOUT" in checks["tool calling"]
    assert "latency" not in checks and "reasoning" not in checks


def test_a_model_name_the_server_does_not_serve(clean_environ: Path, fake_llm: FakeVLLM) -> None:
    result = doctor(fake_llm.url, DADANG_LLM_MODEL="qwen3-32b")
    assert report(result)["llm"] == (
        f"✗ {fake_llm.url} does not serve 'qwen3-32b' (it lists qwen3); fix: set "
        "DADANG_LLM_MODEL to one of them, or start vLLM with --served-model-name qwen3-32b"
    )


@pytest.mark.parametrize(
    ("max_model_len", "env", "expected"),
    [
        (8192, {}, "✗ max_model_len 8192 is too short"),
        (12288, {}, "! max_model_len 12288: Dadang's prompts"),
        (32768, {"DADANG_PROMPT_BUDGET_TOKENS": "30000"}, "✗ max_model_len 32768 is too short"),
        (40960, {"DADANG_PROMPT_BUDGET_TOKENS": "30000"}, "✓ max_model_len 40960"),
    ],
)
def test_context_length_is_compared_with_the_prompt_budget(
    clean_environ: Path, max_model_len: int, env: dict[str, str], expected: str
) -> None:
    with FakeVLLM(max_model_len=max_model_len, responder=vllm.use_offered_tool) as server:
        result = doctor(server.url, **env)
    line = report(result)["context"]
    assert line.startswith(expected)
    if not line.startswith("✓"):
        assert "start vLLM with --max-model-len 32768" in line
    if line.startswith("✗"):
        assert "DADANG_PROMPT_BUDGET_TOKENS" in line and result.exit_code == 1


def test_json_output_for_machines(clean_environ: Path, good: FakeVLLM) -> None:
    result = doctor(good.url, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["llm"]["data"] == {
        "model": "qwen3",
        "root": "Qwen/Qwen3-8B",
        "max_model_len": 32768,
        "listed": ["qwen3"],
    }
    assert checks["context"]["data"] == {"max_model_len": 32768, "needed": 11048}
    latency = checks["latency"]["data"]
    assert 0 <= latency["first_token_s"] <= latency["total_s"] < 5
    assert checks["reasoning"]["data"] == {"separated": True, "field": "reasoning"}
    assert {c["status"] for c in body["checks"]} == {"ok"}

    down = doctor(f"http://127.0.0.1:{free_port()}/v1", "--json")
    assert down.exit_code == 1
    failed = json.loads(down.stdout)
    assert failed["ok"] is False
    (llm,) = [c for c in failed["checks"] if c["name"] == "llm"]
    assert llm["status"] == "fail" and "DADANG_LLM_BASE_URL" in llm["fix"]


def test_the_fake_refuses_to_start_like_vllm_without_a_parser() -> None:
    with pytest.raises(TypeError, match="--enable-auto-tool-choice requires --tool-call-parser"):
        FakeVLLM(enable_auto_tool_choice=True, tool_call_parser=None)
