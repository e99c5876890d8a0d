"""OpenAPI schemas (3.0 and 3.1 dialects) as the few shapes a declarative tool parameter has.

A tool parameter is string, integer, number, boolean, array or object, with an optional enum; the
rest of JSON Schema (patterns, bounds, nested shapes) is the API's to enforce. What differs by
version is folded here: 3.1 `type: [string, "null"]` and `const`, 3.0 `nullable`, `example` and
3.1 `examples`. Recursive schemas are safe: a `$ref` met again on the way down becomes `object`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast, get_args

from automation.http_tools.openapi_refs import Refs, ref_name
from automation.http_tools.openapi_text import PARAMETER_CHARS, brief
from automation.http_tools.spec import ParamType

_TYPES: Final = frozenset(get_args(ParamType))
_FORMATS: Final = {
    "date": "YYYY-MM-DD",
    "date-time": "ISO 8601 date-time",
    "time": "HH:MM:SS",
    "email": "email address",
    "uri": "URL",
    "url": "URL",
    "uuid": "UUID",
}
_EXAMPLE_CHARS: Final = 30
_COMBINATORS: Final = ("allOf", "oneOf", "anyOf")


@dataclass(frozen=True, kw_only=True)
class Shape:
    """What a tool parameter needs to know about one schema."""

    type: ParamType = "string"
    enum: list[str | int] | None = None
    description: str = ""
    """The schema's own description, already short."""
    hints: tuple[str, ...] = ()
    """Format, example or allowed values, for the parameter description."""
    read_only: bool = False
    """`readOnly`: sent by the server, never by a client (left out of request bodies)."""
    item_type: str | None = None
    """For an array: the items' type, when known."""
    null: bool = False
    """The schema allows only null (a `oneOf` branch to ignore)."""


def shape(schema: Any, refs: Refs, _seen: frozenset[str] = frozenset()) -> Shape:
    """The parameter shape of `schema`.

    Raises:
        SkippedOperation: the schema uses an external `$ref`.
    """
    ref = ref_name(schema)
    if ref is not None:
        if ref in _seen:
            return Shape(type="object")  # a recursive schema: stop at the cycle
        _seen = _seen | {ref}
    node = refs.resolve(schema)
    if not isinstance(node, dict):
        return Shape()
    kind = _own_type(node)
    if kind == "null":
        return Shape(null=True)
    description = brief(node.get("description"), PARAMETER_CHARS)
    hints = _hints(node)
    if kind is None:
        branches = [
            shape(branch, refs, _seen)
            for key in _COMBINATORS
            if isinstance(node.get(key), list)
            for branch in node[key]
        ]
        chosen = next((b for b in branches if not b.null), None)
        if chosen is not None:
            return Shape(
                type=chosen.type,
                enum=_enum(node, chosen.type) or chosen.enum,
                description=description or chosen.description,
                hints=hints or chosen.hints,
                read_only=bool(node.get("readOnly")) or chosen.read_only,
                item_type=chosen.item_type,
            )
        kind = "string"
    item_type = None
    if kind == "array":
        items = shape(node.get("items"), refs, _seen) if "items" in node else Shape()
        item_type = items.type
        if items.enum:
            hints = (*hints, "values: " + ", ".join(map(str, items.enum)))
    return Shape(
        type=cast(ParamType, kind),
        enum=_enum(node, kind) if kind != "array" else None,
        description=description,
        hints=hints,
        read_only=bool(node.get("readOnly")),
        item_type=item_type,
    )


def object_fields(
    schema: Any, refs: Refs, _seen: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[str]] | None:
    """The properties and required names of an object schema; None when it is no object.

    `allOf` parts are merged; `oneOf`/`anyOf` alternatives are united, and a property is required
    only when every alternative requires it.

    Raises:
        SkippedOperation: the schema uses an external `$ref`.
    """
    ref = ref_name(schema)
    if ref is not None:
        if ref in _seen:
            return {}, []
        _seen = _seen | {ref}
    node = refs.resolve(schema)
    if not isinstance(node, dict) or _own_type(node) not in (None, "object"):
        return None
    properties: dict[str, Any] = {}
    if isinstance(node.get("properties"), dict):
        properties.update(node["properties"])
    required = [name for name in node.get("required") or [] if isinstance(name, str)]
    for part in node.get("allOf") or []:
        merged = object_fields(part, refs, _seen)
        if merged is None:
            return None
        properties.update(merged[0])
        required += merged[1]
    alternatives = [
        found
        for key in ("oneOf", "anyOf")
        for option in node.get(key) or []
        if (found := object_fields(option, refs, _seen)) is not None
    ]
    if alternatives:
        for option_properties, _ in alternatives:
            for name, value in option_properties.items():
                properties.setdefault(name, value)
        everywhere = set.intersection(*(set(names) for _, names in alternatives))
        required += sorted(everywhere)
    return properties, list(dict.fromkeys(name for name in required if name in properties))


def describe(description: object, found: Shape) -> str:
    """A parameter description of at most PARAMETER_CHARS: its words, then format or example."""
    text = brief(description, PARAMETER_CHARS) or found.description
    hints = [h for h in found.hints if text == "" or not h.startswith("e.g.")]
    if not hints:
        return text
    extra = "; ".join(hints)
    if not text:
        return brief(extra, PARAMETER_CHARS)
    room = PARAMETER_CHARS - len(extra) - 3
    if room < 20:
        return text
    return f"{brief(text, room).rstrip('.')} ({extra})"


def _own_type(node: dict[str, Any]) -> str | None:
    """The schema's type without looking into `allOf`/`oneOf`/`anyOf`; "null" if only null."""
    declared = node.get("type")
    if isinstance(declared, list):
        types = [t for t in declared if t != "null"]
        declared = types[0] if types else ("null" if declared else None)
    if declared == "null" or declared in _TYPES:
        return str(declared)
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node:
        return "array"
    values = [node["const"]] if "const" in node else node.get("enum")
    if isinstance(values, list):
        for value in values:
            if isinstance(value, bool):
                return "boolean"
            if isinstance(value, int):
                return "integer"
            if isinstance(value, float):
                return "number"
            if isinstance(value, str):
                return "string"
    return None


def _enum(node: dict[str, Any], kind: str) -> list[str | int] | None:
    """The allowed values (`enum`, or 3.1 `const`) that fit the parameter type, if any."""
    values = [node["const"]] if "const" in node else node.get("enum")
    if not isinstance(values, list):
        return None
    values = [v for v in values if v is not None]
    if kind == "string" and all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in values
    ):
        return [str(v) for v in values] or None
    if kind == "integer" and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return list(values) or None
    return None


def _hints(node: dict[str, Any]) -> tuple[str, ...]:
    hints: list[str] = []
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        hints.append(_FORMATS[fmt])
    examples = node.get("examples")
    example = examples[0] if isinstance(examples, list) and examples else node.get("example")
    # Only text examples: a number's example ("e.g. 2") costs tokens and says nothing.
    if isinstance(example, str) and 0 < len(example) <= _EXAMPLE_CHARS and "\n" not in example:
        hints.append(f"e.g. {example}")
    return tuple(hints)
