"""Local `$ref` resolution for an OpenAPI document, safe against cycles.

Why checked up front: a `$ref` that points nowhere is a broken document, and the user should hear
about every one of them at once rather than one failed operation at a time. External references
(`other.yaml#/X`, `https://…`) are legal but need files we do not fetch; the operations that use
them are skipped with a warning telling how to bundle the document into one file.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import unquote

from automation.http_tools.errors import SkippedOperation

MAX_CHAIN: Final = 64
"""Longest chain of `$ref` → `$ref` followed before calling it circular."""
MAX_LISTED: Final = 20
"""Broken references listed before "… and N more"."""
_LITERAL_KEYS: Final = frozenset({"example", "default", "enum", "const", "value"})
BUNDLE_HINT: Final = "bundle the document into one file first (e.g. `npx @redocly/cli bundle`)"


class BrokenRef(Exception):
    """A local `$ref` that points at nothing, or only at itself through other `$ref`s."""


class Refs:
    """Looks up `#/…` references in one document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    def problems(self) -> list[str]:
        """One line per broken local `$ref` anywhere in the document (each target once)."""
        broken: dict[str, tuple[str, str, int]] = {}
        for ref, where in _all_refs(self._document):
            if not ref.startswith("#"):
                continue  # external: the operations using it are skipped later
            if ref in broken:
                reason, first, count = broken[ref]
                broken[ref] = (reason, first, count + 1)
                continue
            try:
                self._follow(ref)
            except BrokenRef as exc:
                broken[ref] = (str(exc), where, 1)
            except SkippedOperation:
                continue  # leads to an external reference: skipped per operation
        lines = [
            f"$ref {ref!r} at {where}{f' (and {count - 1} more places)' if count > 1 else ''}: "
            f"{reason}"
            for ref, (reason, where, count) in broken.items()
        ]
        if len(lines) > MAX_LISTED:
            lines = [*lines[:MAX_LISTED], f"… and {len(lines) - MAX_LISTED} more broken $refs"]
        return lines

    def resolve(self, node: Any) -> Any:
        """`node` with its `$ref` chain followed; sibling keys (3.1 style) override the target.

        Raises:
            SkippedOperation: the reference is external or broken.
        """
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        try:
            target = self._follow(node["$ref"])
        except BrokenRef as exc:
            raise SkippedOperation(f"$ref {node['$ref']!r}: {exc}") from None
        if siblings and isinstance(target, dict):
            return {**target, **siblings}
        return target

    def _follow(self, ref: str) -> Any:
        seen: list[str] = []
        while True:
            if not ref.startswith("#"):
                raise SkippedOperation(f"uses the external $ref {ref!r}; {BUNDLE_HINT}")
            if ref in seen or len(seen) >= MAX_CHAIN:
                chain = " → ".join([*seen, ref])
                raise BrokenRef(f"circular reference ({chain}) that never reaches a definition")
            seen.append(ref)
            target = _pointer(self._document, ref)
            if isinstance(target, dict) and isinstance(target.get("$ref"), str):
                ref = target["$ref"]
                continue
            return target


def ref_name(node: Any) -> str | None:
    """The `$ref` of `node`, if it is a reference."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return str(node["$ref"])
    return None


def _literal(key: object, value: Any) -> bool:
    """Is `value` literal data (an example, a default) or an extension, where `$ref` is no ref?"""
    name = str(key)
    if name in _LITERAL_KEYS or name.startswith("x-"):
        return True
    return name == "examples" and isinstance(value, list)  # 3.1 schema examples, not a map


def _pointer(document: dict[str, Any], ref: str) -> Any:
    """The value at a `#/a/b` JSON pointer (RFC 6901, percent-decoded as a URI fragment)."""
    fragment = unquote(ref[1:])
    if fragment in ("", "/"):
        return document
    if not fragment.startswith("/"):
        raise BrokenRef("only JSON pointers like '#/components/schemas/Name' are supported")
    node: Any = document
    for raw in fragment[1:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise BrokenRef(f"nothing is defined at {key!r}; fix the name or add the definition")
    return node


def _all_refs(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every `$ref` string in the document with where it is, e.g. `paths./pets.get`."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    while stack:  # iterative: a deep document must not hit the recursion limit
        node, path = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                found.append((ref, ".".join(path) or "the top level"))
            children = [
                (str(key), value) for key, value in node.items() if not _literal(key, value)
            ]
        else:
            children = [(str(index), value) for index, value in enumerate(node)]
        # Reversed onto the stack, so they come off in document order (readable messages).
        stack.extend(
            (value, (*path, key))
            for key, value in reversed(children)
            if isinstance(value, dict | list)
        )
    return found
