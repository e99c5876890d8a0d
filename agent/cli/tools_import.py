"""`dadang tools import-openapi`: an OpenAPI 3.0/3.1 document as a file of declarative HTTP tools.

The work is `automation.http_tools.openapi`; this module reads the document (a file, or a URL
fetched from that host only), writes `$DADANG_HOME/tools/<name>.yaml` and tells the user what is
left to do: the secrets to set, and what was skipped. A document that cannot be imported writes
nothing and exits 1 with one line per problem.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from agent.cli.common import settings_or_exit
from automation.http_tools.errors import OpenApiError
from automation.http_tools.openapi import OpenApiImport, import_openapi, tool_prefix
from automation.http_tools.openapi_document import parse_document
from automation.http_tools.openapi_render import render_tools_file
from automation.http_tools.openapi_source import OpenApiSource, fetch, is_url, read_file
from automation.tools.base import RiskLevel

_LEVELS = ", ".join(level.value for level in RiskLevel)


def import_openapi_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE_OR_URL",
            help="an OpenAPI 3.0 or 3.1 document, JSON or YAML: a file path or an http(s) URL",
        ),
    ],
    name: Annotated[
        str,
        typer.Option(
            "--name", help="short name of the API: prefixes tool and secret names, names the file"
        ),
    ],
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="where the calls go, instead of the document's servers"),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="import only this tag, operationId or tool name (repeatable)"),
    ] = None,
    risk: Annotated[
        list[str] | None,
        typer.Option(
            "--risk",
            metavar="OPERATION=LEVEL",
            help=f"risk of one operationId or tool name instead of its method's ({_LEVELS})",
        ),
    ] = None,
    include_deprecated: Annotated[
        bool, typer.Option("--include-deprecated", help="import deprecated operations too")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="write here instead of $DADANG_HOME/tools/NAME.yaml"),
    ] = None,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="print the YAML instead of writing a file")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Turn an OpenAPI document into declarative HTTP tools, one per operation."""
    if output is not None and stdout:
        _fail(["--output and --stdout exclude each other; pick one"], code=2)
    risks = _risks(risk or [])
    try:
        prefix = tool_prefix(name)
    except OpenApiError as exc:
        _fail(exc.problems, code=2)
    target = None if stdout else (output or settings_or_exit().home / "tools" / f"{prefix}.yaml")
    if target is not None and target.exists() and not force:
        _fail([f"{target} exists; pass --force to overwrite it (edits made there are lost)"])
    try:
        document_source = asyncio.run(fetch(source)) if is_url(source) else read_file(source)
        document = parse_document(document_source.text, source=source)
        result = import_openapi(
            document,
            name=name,
            base_url=base_url,
            document_url=document_source.url,
            only=only or [],
            risks=risks,
            include_deprecated=include_deprecated,
            source=source,
        )
    except OpenApiError as exc:
        _fail(exc.problems)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if not result.tools:
        _fail([f"no tools: none of the {result.operations} operations could be imported (above)"])
    command = _command(document_source, name, base_url, only, risk, include_deprecated, output)
    text = render_tools_file(
        result,
        imported_from=document_source.location,
        command=command + (" --stdout" if stdout else " --force"),
        generated_at=datetime.now(UTC),
    )
    if target is None:
        typer.echo(text, nl=False)
    else:
        _write(target, text)
    _summary(result, target=target, prefix=prefix, to_stderr=stdout)


def _risks(values: list[str]) -> dict[str, RiskLevel]:
    risks: dict[str, RiskLevel] = {}
    problems = []
    for value in values:
        key, sep, level = value.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            risks[key.strip()] = RiskLevel(level.strip().lower())
        except ValueError:
            problems.append(f"--risk {value!r}: expected OPERATION=LEVEL, LEVEL one of {_LEVELS}")
    if problems:
        _fail(problems, code=2)
    return risks


def _command(
    source: OpenApiSource,
    name: str,
    base_url: str | None,
    only: list[str] | None,
    risk: list[str] | None,
    include_deprecated: bool,
    output: Path | None,
) -> str:
    """The command line that imports the same document the same way."""
    parts = ["dadang", "tools", "import-openapi", source.location, "--name", name]
    if base_url:
        parts += ["--base-url", base_url]
    for value in only or []:
        parts += ["--only", value]
    for value in risk or []:
        parts += ["--risk", value]
    if include_deprecated:
        parts.append("--include-deprecated")
    if output is not None:
        parts += ["--output", str(output.resolve())]
    return shlex.join(parts)


def _write(target: Path, text: str) -> None:
    """Write `text` whole or not at all: a half-written file would break the loader."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        _fail([f"cannot write {target} ({exc.strerror or exc})"])


def _summary(result: OpenApiImport, *, target: Path | None, prefix: str, to_stderr: bool) -> None:
    skipped = result.operations - len(result.tools)
    where = f"to {target}" if target is not None else "to standard output"
    lines = [
        f"Wrote {len(result.tools)} tools {where}"
        + (
            f" ({skipped} of {result.operations} operations skipped: see the warnings)."
            if skipped
            else "."
        )
    ]
    for secret in result.secrets:
        lines.append(f"Set the secret they use: dadang secrets set {secret}")
    if target is not None:
        lines.append(f"`dadang tools list` shows them, with the source openapi:{target.stem}.")
    for line in lines:
        typer.echo(line, err=to_stderr)


def _fail(problems: list[str], *, code: int = 1) -> NoReturn:
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(code)
