"""One OpenAPI operation as one declarative HTTP tool: its URL, parameters and auth.

Decisions, each because of what a declarative tool can send (`spec.py`):

- Path, query and header parameters map one to one; path-item parameters are merged in, the
  operation's own winning. `Accept`, `Content-Type` and `Authorization` headers are ignored, as
  OpenAPI says. Cookie parameters cannot be sent: an optional one is left out with a note, a
  required one skips the operation.
- A JSON body whose schema is an object becomes one `in: body` parameter per top-level property
  (read-only ones left out, `required` honoured). Any other body (a form, a file, a JSON array or
  string) skips the operation when required: a tool sends one JSON object of named fields, and a
  single catch-all `body` parameter would be sent as `{"body": …}`, which no API expects.
- Names must be usable as given, since the name is also the key sent; a parameter whose name
  cannot be (`filter[status]`) or that clashes with another is left out when optional and skips
  the operation when required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from automation.http_tools.errors import SkippedOperation
from automation.http_tools.openapi_refs import Refs
from automation.http_tools.openapi_schema import describe, object_fields, shape
from automation.http_tools.openapi_security import SecurityMapper
from automation.http_tools.spec import BODY_METHODS

_PARAMETER_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
"""As `spec.Parameter.name`."""
_IGNORED_HEADERS: Final = frozenset({"accept", "content-type", "authorization"})
_ORDER: Final = {"path": 0, "query": 1, "header": 2, "cookie": 3}


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One method of one path, as found in the document."""

    path: str
    method: str
    """Lower case, as in the document."""
    spec: dict[str, Any]
    """The operation object."""
    item: dict[str, Any]
    """Its path item (shared parameters, servers)."""
    name: str
    """The tool name it gets."""

    @property
    def label(self) -> str:
        """`GET /rooms (listRooms)`: how warnings name it."""
        op_id = self.spec.get("operationId")
        return f"{self.method.upper()} {self.path}" + (f" ({op_id})" if op_id else "")


@dataclass(kw_only=True)
class OperationBuilder:
    """Builds tool dicts; collects notes about parameters left out along the way."""

    refs: Refs
    security: SecurityMapper
    notes: list[str] = field(default_factory=list)
    """Warnings about operations imported with something left out."""
    string_arrays: list[str] = field(default_factory=list)
    """`tool.param` body arrays whose items are not strings (tools send arrays of strings)."""

    def build(self, operation: Operation, *, url: str, description: str) -> dict[str, Any]:
        """The tool dict of `operation` (not yet validated).

        Raises:
            SkippedOperation: the operation cannot become a working tool.
        """
        taken: set[str] = set()
        parameters = [
            entry
            for raw in self._parameters(operation)
            if (entry := self._parameter(operation, raw, taken)) is not None
        ]
        parameters += self._body(operation, taken)
        tool: dict[str, Any] = {
            "name": operation.name,
            "description": description,
            "method": operation.method.upper(),
            "url": url,
        }
        if parameters:
            tool["parameters"] = parameters
        auth = self.security.auth_for(operation.spec, label=operation.name)
        if auth is not None:
            tool["auth"] = auth
        return tool

    def _parameters(self, operation: Operation) -> list[dict[str, Any]]:
        """Path-item and operation parameters, resolved; the operation's win; path first."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in [
            *(operation.item.get("parameters") or []),
            *(operation.spec.get("parameters") or []),
        ]:
            param = self.refs.resolve(raw)
            if not isinstance(param, dict) or not param.get("name") or not param.get("in"):
                raise SkippedOperation("a parameter has no `name` or `in`")
            merged[(str(param["name"]), str(param["in"]))] = param
        return sorted(merged.values(), key=lambda p: _ORDER.get(str(p["in"]), 9))

    def _parameter(
        self, operation: Operation, param: dict[str, Any], taken: set[str]
    ) -> dict[str, Any] | None:
        name, location = str(param["name"]), str(param["in"])
        required = location == "path" or bool(param.get("required"))
        if location == "header" and name.lower() in _IGNORED_HEADERS:
            return None
        if location == "cookie":
            self._leave_out(operation, name, required, "is a cookie, which tools cannot send")
            return None
        if location not in ("path", "query", "header"):
            self._leave_out(operation, name, required, f"is in {location!r}")
            return None
        found = shape(_parameter_schema(param), self.refs)
        kind = "string" if location == "path" and found.type == "array" else found.type
        problem = _name_problem(name, taken)
        if kind == "object":
            problem = f"is an object in the {location}"
        if problem is not None:
            self._leave_out(operation, name, required, problem)
            return None
        taken.add(name)
        entry: dict[str, Any] = {"name": name, "in": location, "type": kind}
        return _finish(entry, required, found.enum, describe(param.get("description"), found))

    def _body(self, operation: Operation, taken: set[str]) -> list[dict[str, Any]]:
        body = self.refs.resolve(operation.spec.get("requestBody"))
        if not isinstance(body, dict):
            return []
        needed = bool(body.get("required"))
        content: dict[str, Any] = body.get("content") or {}
        if not isinstance(content, dict):
            content = {}
        media = next((m for m in content if _is_json(m)), None)
        if operation.method.upper() not in BODY_METHODS:
            return self._no_body(operation, needed, f"a {operation.method.upper()} sends no body")
        if media is None:
            kinds = ", ".join(map(str, content)) or "without content"
            return self._no_body(
                operation, needed, f"the request body is {kinds}; only JSON bodies can be sent"
            )
        schema = (content[media] or {}).get("schema")
        fields = object_fields(schema, self.refs)
        if fields is None:
            kind = shape(schema, self.refs).type
            return self._no_body(
                operation, needed, f"the JSON body is {_a(kind)}, not an object of named fields"
            )
        properties, required = fields
        if not properties:
            return self._no_body(operation, needed, "the JSON body declares no fields")
        entries = []
        for name, schema in properties.items():
            found = shape(schema, self.refs)
            if found.read_only:
                continue
            is_required = name in required
            if problem := _name_problem(name, taken):
                self._leave_out(operation, name, is_required, problem, body=True)
                continue
            taken.add(name)
            if found.type == "array" and found.item_type not in (None, "string"):
                self.string_arrays.append(f"{operation.name}.{name}")
            entry: dict[str, Any] = {"name": name, "in": "body", "type": found.type}
            entries.append(_finish(entry, is_required, found.enum, describe(None, found)))
        return entries

    def _leave_out(
        self, operation: Operation, name: str, required: bool, why: str, *, body: bool = False
    ) -> None:
        what = "body field" if body else "parameter"
        if required:
            raise SkippedOperation(f"required {what} {name!r} {why}")
        self.notes.append(f"{operation.label}: optional {what} {name!r} left out: it {why}")

    def _no_body(self, operation: Operation, needed: bool, why: str) -> list[dict[str, Any]]:
        if needed:
            raise SkippedOperation(why)
        self.notes.append(f"{operation.label}: optional request body left out: {why}")
        return []


def _finish(
    entry: dict[str, Any], required: bool, enum: list[str | int] | None, description: str
) -> dict[str, Any]:
    if required:
        entry["required"] = True
    if enum:
        entry["enum"] = enum
    if description:
        entry["description"] = description
    return entry


def _parameter_schema(param: dict[str, Any]) -> Any:
    """`schema`, or the schema of the first `content` entry (the other way to declare one)."""
    if "schema" in param or not isinstance(param.get("content"), dict):
        return param.get("schema")
    media = next(iter(param["content"].values()), None)
    return media.get("schema") if isinstance(media, dict) else None


def _name_problem(name: str, taken: set[str]) -> str | None:
    if name in taken:
        return "has the same name as another parameter"
    if not _PARAMETER_NAME.match(name):
        return "has a name tools cannot use (letters, digits, _ . - only)"
    return None


def _is_json(media: object) -> bool:
    return str(media).partition(";")[0].strip().lower() == "application/json"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
