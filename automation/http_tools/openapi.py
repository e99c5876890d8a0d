"""`import_openapi`: an OpenAPI 3.0/3.1 document as declarative HTTP tools (the format of `spec`).

One operation becomes one tool named `<prefix>_<operationId in snake_case>` (or, without an
operationId, from the method and path), at most 64 characters and unique in the file. What
cannot become a working tool is skipped with a warning instead of failing the whole import; what
makes the document unusable (see `errors.OpenApiError`) stops it before anything is written.
Every tool returned has been validated as an `HttpToolSpec`, and leaves `risk` unset so the
method's default applies unless the caller overrides it for an operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from pydantic import ValidationError

from automation.http_tools.errors import OpenApiError, SkippedOperation
from automation.http_tools.openapi_document import base_url as document_base_url
from automation.http_tools.openapi_document import check_document, server_url
from automation.http_tools.openapi_operation import Operation, OperationBuilder
from automation.http_tools.openapi_refs import Refs
from automation.http_tools.openapi_security import SecurityMapper
from automation.http_tools.openapi_text import DESCRIPTION_CHARS, brief, snake
from automation.http_tools.spec import HttpToolSpec, Method
from automation.tools.base import RiskLevel

METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
"""The operation keys of a path item, in the order OpenAPI lists them."""
_SENDABLE: Final = frozenset(get_args(Method))
MAX_PREFIX: Final = 30
MAX_NAME: Final = 64
_LISTED: Final = 5


@dataclass(frozen=True, kw_only=True)
class OpenApiImport:
    """The tools made from a document, and what the user should know about them."""

    tools: list[dict[str, Any]]
    """`HttpToolSpec`-shaped dicts, in document order, each validated."""
    warnings: list[str]
    """Operations skipped and parts left out, each with the reason."""
    secrets: list[str]
    """Secret names the tools read; set each with `dadang secrets set NAME`."""
    operations: int
    """Operations selected for import (after `only`), imported or not."""


def import_openapi(
    document: dict[str, Any],
    *,
    name: str,
    base_url: str | None = None,
    document_url: str | None = None,
    only: Iterable[str] = (),
    risks: Mapping[str, RiskLevel] | None = None,
    include_deprecated: bool = False,
    source: str = "the document",
) -> OpenApiImport:
    """Convert a parsed OpenAPI document into tool specs.

    `name` prefixes every tool and secret; `base_url` replaces the document's servers;
    `document_url` (where it was fetched) resolves relative server URLs; `only` keeps operations
    whose tag, operationId or tool name is listed; `risks` maps an operationId or tool name to
    its risk level; `source` names the document in errors.

    Raises:
        OpenApiError: the document cannot be imported, or `only`/`risks` name nothing in it.
    """
    check_document(document, source=source)
    refs = Refs(document)
    if problems := refs.problems():
        raise OpenApiError([f"{source}: {line}" for line in problems])
    prefix = tool_prefix(name)
    root = document_base_url(document, override=base_url, document_url=document_url)
    warnings: list[str] = []
    operations = _operations(document, refs, prefix, warnings)
    selected = _select(operations, set(only), set(risks or {}))
    security = SecurityMapper(document=document, refs=refs, prefix=prefix)
    builder = OperationBuilder(refs=refs, security=security)
    tools: list[dict[str, Any]] = []
    deprecated: list[str] = []
    for operation in selected:
        if operation.spec.get("deprecated") and not include_deprecated:
            deprecated.append(operation.label)
            continue
        try:
            tool = _tool(
                operation, builder, root=root, override=base_url, document_url=document_url
            )
        except SkippedOperation as exc:
            warnings.append(f"{operation.label}: skipped: {exc}")
            continue
        risk = _risk(operation, risks or {})
        if risk is not None:  # after `url`, where a hand-written file has it
            head = {key: tool[key] for key in ("name", "description", "method", "url")}
            tool = {**head, "risk": risk.value, **tool}
        try:
            HttpToolSpec.model_validate(tool)
        except ValidationError as exc:
            reason = "; ".join(
                str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()
            )
            warnings.append(f"{operation.label}: skipped: {reason}")
            continue
        tools.append(tool)
    warnings += builder.notes + security.warnings()
    if deprecated:
        warnings.append(
            f"{len(deprecated)} deprecated operations skipped (pass --include-deprecated to import "
            f"them): {_some(deprecated)}"
        )
    if builder.string_arrays:
        warnings.append(
            "these body fields are arrays of numbers or objects, but declarative tools send arrays "
            f"of strings; check the API accepts that: {_some(builder.string_arrays)}"
        )
    secrets = sorted({tool["auth"]["secret"] for tool in tools if "auth" in tool})
    return OpenApiImport(tools=tools, warnings=warnings, secrets=secrets, operations=len(selected))


def tool_prefix(name: str) -> str:
    """`name` (the --name) as the snake_case prefix of tool and secret names.

    Raises:
        OpenApiError: nothing usable in it, or longer than MAX_PREFIX.
    """
    prefix = snake(name)
    if not prefix:
        raise OpenApiError(
            [f"--name {name!r} has no ASCII letters or digits; use e.g. --name office"]
        )
    if len(prefix) > MAX_PREFIX:
        raise OpenApiError(
            [
                f"--name {name!r} is longer than {MAX_PREFIX} characters; tool names must stay "
                f"within {MAX_NAME}: pick a shorter one"
            ]
        )
    return prefix


def _operations(
    document: dict[str, Any], refs: Refs, prefix: str, warnings: list[str]
) -> list[Operation]:
    """Every operation in document order, each with a unique tool name."""
    found: list[Operation] = []
    used: set[str] = set()
    for path, raw_item in (document.get("paths") or {}).items():
        if not str(path).startswith("/"):
            continue  # an `x-` extension, not a path
        try:
            item = refs.resolve(raw_item)
        except SkippedOperation as exc:
            warnings.append(f"{path}: skipped: {exc}")
            continue
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            spec = item.get(method)
            if not isinstance(spec, dict):
                continue
            name = _unique(_tool_name(prefix, method, str(path), spec), used)
            found.append(Operation(path=str(path), method=method, spec=spec, item=item, name=name))
    return found


def _select(operations: list[Operation], only: set[str], risks: set[str]) -> list[Operation]:
    """The operations `only` names (all without it); any `only` or `risks` key naming nothing
    is an error, since a typo must not silently import everything or leave a risk unset."""
    problems = []
    keys = [_keys(operation) for operation in operations]
    known = set().union(*keys) if keys else set()
    tags = sorted({t for op in operations for t in op.spec.get("tags") or [] if isinstance(t, str)})
    for wanted in sorted(only - known):
        problems.append(
            f"--only {wanted!r} matches no tag, operationId or tool name in the document"
            + (f"; its tags are: {', '.join(tags)}" if tags else "")
        )
    for wanted in sorted(risks - known):
        problems.append(
            f"--risk {wanted}=…: no operationId or tool name {wanted!r} in the document"
        )
    if problems:
        raise OpenApiError(problems)
    if not only:
        return operations
    return [op for op, names in zip(operations, keys, strict=True) if names & only]


def _keys(operation: Operation) -> set[str]:
    tags = {t for t in operation.spec.get("tags") or [] if isinstance(t, str)}
    op_id = operation.spec.get("operationId")
    return {operation.name, *tags, *([str(op_id)] if op_id else [])}


def _risk(operation: Operation, risks: Mapping[str, RiskLevel]) -> RiskLevel | None:
    op_id = operation.spec.get("operationId")
    return risks.get(str(op_id)) if op_id and str(op_id) in risks else risks.get(operation.name)


def _tool(
    operation: Operation,
    builder: OperationBuilder,
    *,
    root: str,
    override: str | None,
    document_url: str | None,
) -> dict[str, Any]:
    if operation.method.upper() not in _SENDABLE:
        raise SkippedOperation(f"{operation.method.upper()} is not a method tools can send")
    base = root
    if override is None:
        servers = operation.spec.get("servers") or operation.item.get("servers")
        try:
            base = server_url(servers, document_url=document_url) or root
        except OpenApiError as exc:
            raise SkippedOperation(exc.problems[0]) from None
    spec = operation.spec
    description = (
        brief(spec.get("summary"), DESCRIPTION_CHARS)
        or brief(spec.get("description"), DESCRIPTION_CHARS)
        or f"{operation.method.upper()} {operation.path}"
    )
    if spec.get("deprecated"):
        description = f"(deprecated) {description}"
    return builder.build(operation, url=base + operation.path, description=description)


def _tool_name(prefix: str, method: str, path: str, spec: dict[str, Any]) -> str:
    op_id = spec.get("operationId")
    stem = snake(str(op_id)) if op_id else ""
    if not stem:
        stem = snake(f"{method} {path.replace('{', ' ').replace('}', ' ')}") or method
    return _clamp(f"{prefix}_{stem}", MAX_NAME)


def _unique(name: str, used: set[str]) -> str:
    candidate, counter = name, 2
    while candidate in used:
        suffix = f"_{counter}"
        candidate = _clamp(name, MAX_NAME - len(suffix)) + suffix
        counter += 1
    used.add(candidate)
    return candidate


def _clamp(name: str, limit: int) -> str:
    return name[:limit].rstrip("_")


def _some(items: list[str]) -> str:
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(items[:_LISTED]) + more
