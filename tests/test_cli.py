"""The `dadang` command line as a user runs it (a real subprocess, stdin not a terminal)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM


def dadang(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_version() -> None:
    result = dadang("version")
    assert result.returncode == 0
    assert result.stdout.startswith("dadang ")


def test_init_asks_nothing_without_a_terminal_and_is_safe_twice(clean_environ: Path) -> None:
    first = dadang("init", env={"DADANG_TIMEZONE": "Asia/Shanghai"})
    assert first.returncode == 0, first.stderr
    config = clean_environ / "dadang.toml"
    text = config.read_text()
    assert "# llm_base_url" in text and "# telegram_token" in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert (clean_environ / "dadang.db").exists()
    config.write_text(text + '\nllm_model = "my-qwen"\n')
    second = dadang("init")
    assert second.returncode == 0, second.stderr
    assert "kept existing config" in second.stdout
    assert 'llm_model = "my-qwen"' in config.read_text()


def test_corrupt_config_is_a_clear_error(clean_environ: Path) -> None:
    clean_environ.mkdir(parents=True)
    (clean_environ / "dadang.toml").write_text("llm_base_url = [unclosed\n")
    result = dadang("doctor")
    assert result.returncode != 0
    assert "not valid TOML" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_config_key_is_refused(clean_environ: Path) -> None:
    clean_environ.mkdir(parents=True)
    (clean_environ / "dadang.toml").write_text('llm_base_uri = "http://x"\n')
    result = dadang("init")
    assert result.returncode == 2
    assert "llm_base_uri" in result.stderr


def test_doctor_checks_everything_against_working_servers(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram
) -> None:
    fake_llm.push(vllm.tool_calls([("ping", {"word": "pong"})]))
    result = dadang(
        "doctor",
        env={
            "DADANG_LLM_BASE_URL": fake_llm.url,
            "DADANG_TELEGRAM_TOKEN": fake_tg.token,
            "DADANG_TELEGRAM_API_BASE": fake_tg.api_base,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ llm" in result.stdout and "qwen3" in result.stdout
    assert "✓ tool calling" in result.stdout
    assert "✓ telegram: @dadang_test_bot" in result.stdout


def test_doctor_reports_a_wrong_token_and_an_unreachable_model(
    clean_environ: Path, fake_tg: FakeTelegram
) -> None:
    result = dadang(
        "doctor",
        env={
            "DADANG_LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "DADANG_TELEGRAM_TOKEN": "999:wrong",
            "DADANG_TELEGRAM_API_BASE": fake_tg.api_base,
        },
    )
    assert result.returncode == 1
    assert "✗ llm" in result.stdout and "DADANG_LLM_BASE_URL" in result.stdout
    assert "✗ telegram" in result.stdout and "DADANG_TELEGRAM_TOKEN" in result.stdout
    assert "999:wrong" not in result.stdout + result.stderr


def test_database_down_is_a_clear_error(clean_environ: Path) -> None:
    result = dadang("init", env={"DADANG_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"})
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_terminal_chat_shares_history_across_runs(clean_environ: Path, fake_llm: FakeVLLM) -> None:
    env = {"DADANG_LLM_BASE_URL": fake_llm.url, "DADANG_MEMORY_REFLECT": "false"}
    first = dadang("chat", "-m", "my name is Lin", env=env)
    assert first.returncode == 0, first.stderr
    assert "echo: my name is Lin" in first.stdout
    second = dadang("chat", env=env, stdin="what is my name?\n/exit\n")
    assert second.returncode == 0, second.stderr
    assert "echo: what is my name?" in second.stdout
    contents = [m["content"] for m in fake_llm.requests[-1]["messages"]]
    assert "my name is Lin" in contents and "echo: my name is Lin" in contents


def test_pair_approve_with_an_unknown_code_fails_clearly(clean_environ: Path) -> None:
    result = dadang("pair", "approve", "NOPE42")
    assert result.returncode == 1
    assert "dadang pair list" in result.stderr


def test_run_waits_for_a_database_that_is_down_then_explains(clean_environ: Path) -> None:
    result = dadang(
        "run",
        env={
            "DADANG_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
            "DADANG_DATABASE_WAIT": "2",
        },
    )
    assert result.returncode == 1
    assert "not reachable yet" in result.stderr
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr
