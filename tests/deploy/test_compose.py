"""deploy/compose, the single-node stack: checked for what breaks a first `docker compose up`
(flags vLLM rejects, no tool parser, no GPU, secrets in the file, wiring that points nowhere);
its health checks run against a running Dadang, the vLLM fake and a real Chroma server; and
`docker compose config` renders it where a Compose v2 binary is installed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from agent.settings import Settings
from tests.conftest import free_port, make_settings
from tests.fakes.vllm import FakeVLLM

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
REMOVED_VLLM_FLAGS = {"--max-paddings", "--enable-reasoning", "--disable-log-requests"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def default_of(value: str) -> str:
    """`${VAR:-default}` → default, as Compose interpolates with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def flag(args: list[str], name: str) -> str:
    assert name in args, f"vLLM is started without {name}"
    return args[args.index(name) + 1]


def env_example() -> dict[str, str]:
    """KEY=VALUE lines of .env.example, commented-out ones included (they are documentation)."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    found = [re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip()) for line in lines]
    return {m.group(1): m.group(2).strip() for m in found if m}


# --- the file ------------------------------------------------------------------------------------


def test_stack_has_the_four_services_each_with_a_health_check(services: dict[str, Any]) -> None:
    assert set(services) == {"vllm", "dadang", "postgres", "chroma"}
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] == "CMD", f"{name}: exec form, no shell needed"
        assert service.get("restart") == "unless-stopped", name


def test_vllm_serves_qwen3_with_tool_calling_and_only_flags_it_accepts(
    services: dict[str, Any],
) -> None:
    vllm = services["vllm"]
    image, _, tag = default_of(vllm["image"]).partition(":")
    assert image == "vllm/vllm-openai"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), f"pin a release, not {tag!r}"
    args = [str(a) for a in vllm["command"]]
    assert not REMOVED_VLLM_FLAGS & {a.split("=")[0] for a in args}
    assert "--enable-auto-tool-choice" in args
    assert flag(args, "--tool-call-parser") == "hermes"
    assert "--enable-prefix-caching" in args
    assert flag(args, "--served-model-name") == "qwen3"
    model = flag(args, "--model")
    assert model.startswith("Qwen/Qwen3-")
    # Hybrid Qwen3 models think and need the parser; the Instruct-2507 models never think.
    thinking = not model.endswith("-Instruct-2507")
    assert ("--reasoning-parser" in args) == thinking
    if thinking:
        assert flag(args, "--reasoning-parser") == "qwen3"
    assert 4096 <= int(flag(args, "--max-model-len")) <= 32768  # Qwen3's native context
    assert 0.5 <= float(flag(args, "--gpu-memory-utilization")) <= 0.95


def test_vllm_gets_one_gpu_shared_memory_a_weight_cache_and_time_to_load(
    services: dict[str, Any],
) -> None:
    vllm = services["vllm"]
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert vllm.get("ipc") == "host" or vllm.get("shm_size")
    assert "hf-cache:/root/.cache/huggingface" in vllm["volumes"]
    check = vllm["healthcheck"]
    assert "http://127.0.0.1:8000/health" in " ".join(check["test"])
    assert re.fullmatch(r"\d+m", check["start_period"])
    assert int(check["start_period"][:-1]) >= 10, "weights download and load take minutes"


def test_dadang_is_built_here_waits_for_its_stores_and_alone_is_published(
    services: dict[str, Any],
) -> None:
    dadang = services["dadang"]
    build = dadang["build"]
    dockerfile = (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == ROOT / "deploy" / "docker" / "Dockerfile"
    assert dadang["env_file"] == ".env"
    depends = dadang["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["chroma"]["condition"] == "service_healthy"
    # The model may take many minutes; Dadang runs degraded meanwhile and queues messages.
    assert depends["vllm"]["condition"] == "service_started"
    assert "dadang-data:/data" in dadang["volumes"]
    assert "/healthz" in " ".join(dadang["healthcheck"]["test"])
    # The only published port, and only on loopback.
    assert dadang["ports"] == ["127.0.0.1:8765:8765"]
    assert [name for name, service in services.items() if "ports" in service] == ["dadang"]


def test_postgres_and_chroma_are_pinned_and_keep_data_on_named_volumes(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    postgres, chroma = services["postgres"], services["chroma"]
    assert re.fullmatch(r"postgres:1[67]\.\d+(-bookworm)?", postgres["image"])
    assert postgres["healthcheck"]["test"][1] == "pg_isready"
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    # Chroma refuses clients of another version: the server is the client's version.
    assert chroma["image"] == f"chromadb/chroma:{version('chromadb')}"
    assert "chroma-data:/data" in chroma["volumes"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared, f"{name}: {source} is not a named volume"


def test_no_secret_value_is_written_in_the_compose_file(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", str(value)), (
                    f"{name}.{key} must come from .env, not the file"
                )


def test_env_example_wires_dadang_to_the_services_and_holds_no_secret(
    services: dict[str, Any],
) -> None:
    env = env_example()
    llm = urlsplit(env["DADANG_LLM_BASE_URL"])
    assert (llm.hostname, llm.port, llm.path) == ("vllm", 8000, "/v1")
    assert env["DADANG_LLM_MODEL"] == flag(services["vllm"]["command"], "--served-model-name")
    chroma = urlsplit(env["DADANG_CHROMA_URL"])
    assert (chroma.hostname, chroma.port) == ("chroma", 8000)
    postgres = services["postgres"]["environment"]
    database = urlsplit(env["DADANG_DATABASE_URL"])
    assert database.scheme == "postgresql"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    assert database.password == "${POSTGRES_PASSWORD}", "one password, written once"
    for key, value in env.items():
        if SECRET_NAME.search(key):
            assert value in {"", "change-me"}, f"{key} in .env.example must be a placeholder"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"\d{6,}:[A-Za-z0-9_-]{30,}", text), "a Telegram bot token"
    assert not re.search(r"hf_[A-Za-z0-9]{20,}", text), "a Hugging Face token"
    assert ".env" in (COMPOSE_DIR / ".gitignore").read_text(encoding="utf-8").split()


def test_every_dadang_setting_in_env_example_exists() -> None:
    """A misspelt DADANG_* variable is ignored silently; this catches it here instead."""
    fields = {f"DADANG_{name.upper()}" for name in Settings.model_fields}
    unknown = {key for key in env_example() if key.startswith("DADANG_")} - fields
    assert not unknown


# --- the health checks, run for real --------------------------------------------------------------


async def run(argv: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(proc.wait(), timeout=30)


def check_on_port(service: dict[str, Any], port: int) -> list[str]:
    """The service's health-check command aimed at `port` on this machine."""
    test = service["healthcheck"]["test"][1:]
    argv = [re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", a) for a in test]
    if argv[0] in {"python", "python3"}:
        argv[0] = sys.executable
    return argv


async def test_dadang_and_vllm_health_checks_pass_on_running_servers_only(
    clean_environ: Path, fake_llm: FakeVLLM, service_factory: Any, services: dict[str, Any]
) -> None:
    svc = await service_factory(make_settings(clean_environ, llm=fake_llm))
    assert await run(check_on_port(services["dadang"], svc.http.port)) == 0
    assert await run(check_on_port(services["vllm"], fake_llm.port)) == 0  # vLLM's GET /health
    for name in ("dadang", "vllm"):
        assert await run(check_on_port(services[name], free_port())) != 0


@pytest.fixture
def chroma_server(tmp_path: Path) -> Any:
    """A real Chroma server from the installed chromadb package (the same Rust frontend)."""
    binary = Path(sys.executable).parent / "chroma"
    if not binary.exists():
        pytest.skip("the chroma CLI of the chromadb package is not installed")
    port = free_port()
    args = ["run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path)]
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("chroma run did not start within 20 s")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_chroma_health_check_passes_on_a_chroma_server_of_the_pinned_version(
    chroma_server: int, services: dict[str, Any]
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here (the chroma image has it)")
    assert await run(check_on_port(services["chroma"], chroma_server)) == 0
    assert await run(check_on_port(services["chroma"], free_port())) != 0


# --- docker compose config ------------------------------------------------------------------------


def compose_v2() -> list[str] | None:
    """`docker compose` (the CLI plugin) or a `docker-compose` v2 binary, if either is here."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]):
            out = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2."):
                return argv
    return None


def test_docker_compose_renders_the_stack_from_env_example(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    binary = compose_v2()
    if binary is None:
        pytest.skip("no Compose v2 here (neither the docker compose plugin nor docker-compose)")
    workdir = tmp_path / "deploy" / "compose"
    workdir.mkdir(parents=True)
    shutil.copy(COMPOSE_FILE, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}

    def config(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*binary, "config", *args], cwd=workdir, capture_output=True, text=True, env=env
        )

    missing = config("--quiet")  # before `cp .env.example .env`
    assert missing.returncode != 0
    assert "POSTGRES_PASSWORD" in missing.stderr or ".env" in missing.stderr

    shutil.copy(ENV_EXAMPLE, workdir / ".env")
    result = config("--format", "json")
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    services = rendered["services"]
    assert services["vllm"]["image"] == default_of(compose["services"]["vllm"]["image"])
    dadang = services["dadang"]["environment"]
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert dadang["DADANG_DATABASE_URL"] == f"postgresql://dadang:{password}@postgres:5432/dadang"
    assert dadang["DADANG_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert Path(services["dadang"]["build"]["context"]) == tmp_path
    assert set(rendered["volumes"]) == set(compose["volumes"])
