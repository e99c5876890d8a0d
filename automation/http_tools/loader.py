"""Load every `*.yaml` in a directory as HTTP tools; a bad file is reported, the rest still load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from automation.http_tools.spec import IMPORTED_FROM, HttpToolSpec
from automation.http_tools.tool import SecretResolver, build_tool
from automation.tools.base import Tool


def load_http_tools(
    directory: Path, *, resolve_secret: SecretResolver | None = None
) -> tuple[list[Tool[Any]], list[str]]:
    """The tools described by `directory/*.yaml` (and `*.yml`), and one error line per problem.

    A missing directory holds no tools. Each error names the file and the field to fix; a file
    with any error contributes no tools, and a name already taken by an earlier file is refused.
    """
    if not directory.is_dir():
        return [], []
    tools: list[Tool[Any]] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        try:
            specs, imported_from = _read(path)
        except _FileError as exc:
            errors.extend(exc.lines)
            continue
        source = f"openapi:{path.stem}" if imported_from else f"http:{path.stem}"
        for spec in specs:
            if spec.name in seen:
                errors.append(
                    f"{path}: name: tool {spec.name!r} is already defined in {seen[spec.name]}"
                )
                continue
            seen[spec.name] = str(path)
            tools.append(build_tool(spec, source=source, resolve_secret=resolve_secret))
    return tools, errors


class _FileError(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _read(path: Path) -> tuple[list[HttpToolSpec], str | None]:
    """The specs in one file (a mapping for one tool, or `tools:` with a list of them), and
    where `dadang tools import-openapi` imported them from, if it wrote the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _FileError([f"{path}: cannot read the file ({exc})"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _FileError([f"{path}: not valid YAML{line}: {problem}"]) from None
    imported_from = None
    if isinstance(data, dict) and "tools" in data and set(data) <= {"tools", IMPORTED_FROM}:
        entries, prefix = data["tools"], "tools."
        if not isinstance(entries, list) or not entries:
            raise _FileError([f"{path}: tools: must be a non-empty list of tools"])
        imported_from = data.get(IMPORTED_FROM)
        if IMPORTED_FROM in data and (not isinstance(imported_from, str) or not imported_from):
            raise _FileError(
                [f"{path}: {IMPORTED_FROM}: must be the file or URL the tools were imported from"]
            )
    elif isinstance(data, dict):
        entries, prefix = [data], ""
    else:
        raise _FileError([f"{path}: expected a tool (a mapping with name, method, url, …)"])
    specs: list[HttpToolSpec] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        try:
            specs.append(HttpToolSpec.model_validate(entry))
        except ValidationError as exc:
            base = f"{prefix}{index}." if prefix else ""
            for error in exc.errors():
                field = base + ".".join(str(part) for part in error["loc"])
                problems.append(f"{path}: {field.rstrip('.') or 'tool'}: {error['msg']}")
    if problems:
        raise _FileError(problems)
    return specs, imported_from
