"""Reading an OpenAPI document: JSON or YAML text, its version, and the base URL of its calls.

Every check raises `OpenApiError` with lines that say what to change, so `dadang tools
import-openapi` can refuse a document before writing anything.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import yaml

from automation.http_tools.errors import OpenApiError

_VERSION: Final = re.compile(r"^3\.[01](\.\d+)?([-+].*)?$")
_VARIABLE: Final = re.compile(r"\{([^{}]*)\}")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on big APIs


def parse_document(text: str, *, source: str) -> dict[str, Any]:
    """`text` (JSON or YAML) as a mapping.

    Raises:
        OpenApiError: neither JSON nor YAML, or not a mapping.
    """
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.load(text, Loader=_Loader)  # a safe loader (C or pure Python)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise OpenApiError(
                [f"{source}: not JSON, and not valid YAML{line}: {problem}"]
            ) from None
    if not isinstance(data, dict):
        got = "empty" if data is None else f"a {type(data).__name__}"
        raise OpenApiError(
            [
                f"{source}: expected an OpenAPI document (a mapping with openapi, info, paths), "
                f"but it is {got}"
            ]
        )
    return data


def check_document(document: dict[str, Any], *, source: str) -> None:
    """Refuse what is not an OpenAPI 3.0/3.1 document with operations.

    Raises:
        OpenApiError: one line per problem.
    """
    if "swagger" in document:
        raise OpenApiError(
            [
                f"{source}: this is a Swagger {document['swagger']} document; only OpenAPI 3.0 and "
                "3.1 are supported: convert it first (e.g. `npx swagger2openapi FILE -o "
                "openapi.yaml`, or https://converter.swagger.io)"
            ]
        )
    problems = []
    version = document.get("openapi")
    if version is None:
        problems.append(f"{source}: no `openapi:` version field; is this an OpenAPI document?")
    elif not _VERSION.match(str(version)):
        problems.append(f"{source}: OpenAPI {version} is not supported; 3.0.x and 3.1.x are")
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        problems.append(f"{source}: no operations: `paths:` is missing or empty")
    if problems:
        raise OpenApiError(problems)


def server_url(servers: Any, *, document_url: str | None) -> str | None:
    """The first server's URL with its variables' defaults, absolute; None if there is none.

    A relative URL is resolved against `document_url` (where the document was fetched).

    Raises:
        OpenApiError: a variable without a default, or a relative URL with nothing to resolve it.
    """
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return None
    server = servers[0]
    raw = str(server.get("url") or "/")
    variables: dict[str, Any] = server.get("variables") or {}
    if not isinstance(variables, dict):
        variables = {}

    def default(match: re.Match[str]) -> str:
        spec = variables.get(match.group(1))
        if not isinstance(spec, dict) or spec.get("default") is None:
            raise OpenApiError(
                [
                    f"servers[0].url {raw!r}: variable {{{match.group(1)}}} has no default; "
                    "pass --base-url with the full address"
                ]
            )
        return str(spec["default"])

    url = _VARIABLE.sub(default, raw)
    if not urlsplit(url).scheme:
        if document_url is None:
            raise OpenApiError(
                [
                    f"servers[0].url {url!r} is relative and the document was read from a file; "
                    "pass --base-url with the API's full address (e.g. https://api.example.com"
                    f"{url if url.startswith('/') else '/' + url})"
                ]
            )
        url = urljoin(document_url, url)
    return url.rstrip("/")


def base_url(document: dict[str, Any], *, override: str | None, document_url: str | None) -> str:
    """Where the API's calls go: `override` (--base-url), else the document's first server.

    Raises:
        OpenApiError: no usable http(s) base URL.
    """
    url = override.rstrip("/") if override else None
    if url is None:
        url = server_url(document.get("servers"), document_url=document_url)
    if url is None:
        if document_url is None:
            raise OpenApiError(
                [
                    "the document names no servers; pass --base-url with the API's address "
                    "(e.g. --base-url https://api.example.com/v1)"
                ]
            )
        url = urljoin(document_url, "/").rstrip("/")
    check_http_url(url, what="--base-url" if override else "the server URL")
    return url


def check_http_url(url: str, *, what: str) -> None:
    """Raises OpenApiError unless `url` is http(s) with a host and no {placeholders}."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise OpenApiError([f"{what} {url!r} is not a valid URL ({exc})"]) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpenApiError(
            [f"{what} {url!r} is not an http:// or https:// address; pass --base-url"]
        )
    if "{" in url or "}" in url:
        raise OpenApiError([f"{what} {url!r} still has a {{placeholder}}; pass --base-url"])
