"""The YAML format of a declarative HTTP tool, parsed strictly: an unknown key is an error.

A file in `DADANG_HOME/tools/` describes one endpoint as a mapping, or several under `tools:`::

    name: office_list_feedback          # the tool's name: a-z, 0-9 and _, at most 64
    description: List customer feedback between two dates.
    method: GET                         # GET HEAD POST PUT PATCH DELETE
    url: http://127.0.0.1:8088/feedback/{id}   # {param} placeholders only in the path
    risk: read                          # optional; GET/HEAD read, POST/PUT/PATCH write,
                                        # DELETE irreversible
    parameters:                         # the arguments the model fills in
      - {name: id, in: path, type: string, required: true}
      - {name: since, in: query, type: string, description: "YYYY-MM-DD"}
      - {name: title, in: body, type: string, required: true}
    auth: {type: bearer, secret: office_token}   # or {type: header, name: X-Api-Key, secret: …}
                                                 # or {type: query, name: key, secret: …}
    response:
      keep: [items, id]                 # optional: top-level JSON fields kept (of an object, or
                                        # of each object in a top-level list)
      max_chars: 4000                   # longest text returned
    timeout: 15                         # seconds for the whole call

A file written by `dadang tools import-openapi` carries `imported_from: <file or URL>` next to
`tools:`; its tools then show the source `openapi:<file stem>` instead of `http:<file stem>`.

`in` is `path` (URL-encoded into its placeholder, always required), `query`, `header` or `body`
(the body parameters together form one JSON object; only POST, PUT, PATCH and DELETE send one).
`type` is string, integer, number, boolean, array (of strings) or object. `auth` names a secret
set with `dadang secrets set NAME`; its value is read at call time and never shown.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automation.tools.base import RiskLevel

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]

DEFAULT_RISK: Final[dict[str, RiskLevel]] = {
    "GET": RiskLevel.READ,
    "HEAD": RiskLevel.READ,
    "POST": RiskLevel.WRITE,
    "PUT": RiskLevel.WRITE,
    "PATCH": RiskLevel.WRITE,
    "DELETE": RiskLevel.IRREVERSIBLE,
}
"""The risk of a tool whose file does not declare one, by HTTP method."""
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IMPORTED_FROM: Final = "imported_from"
"""The file-level key naming the OpenAPI document a file of tools was generated from."""

_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    """One argument of the tool and where the request carries it."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
    """The argument name the model sees, and the query/header/body key sent."""
    in_: Literal["path", "query", "header", "body"] = Field(alias="in")
    type: ParamType = "string"
    description: str = ""
    required: bool = False
    enum: list[str | int] | None = None
    """The only values allowed, if given."""

    @model_validator(mode="after")
    def _path_is_required(self) -> Self:
        if self.in_ == "path" and not self.required:
            raise ValueError(f"path parameter {self.name!r} must be required: true")
        if self.in_ in ("path", "query", "header") and self.type == "object":
            raise ValueError(f"{self.in_} parameter {self.name!r} cannot be an object")
        return self


class BearerAuth(_Strict):
    """`Authorization: Bearer <secret>`."""

    type: Literal["bearer"]
    secret: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")


class HeaderAuth(_Strict):
    """The secret as the value of the header `name`."""

    type: Literal["header"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,100}$")
    secret: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")


class QueryAuth(_Strict):
    """The secret as the query parameter `name`."""

    type: Literal["query"]
    name: str = Field(min_length=1, max_length=100)
    secret: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")


Auth = Annotated[BearerAuth | HeaderAuth | QueryAuth, Field(discriminator="type")]


class ResponseSpec(_Strict):
    """How the answer is cut down before the model reads it."""

    keep: list[str] | None = None
    """Top-level JSON fields to keep; None keeps all."""
    max_chars: int = Field(default=4000, ge=100, le=50_000)


class HttpToolSpec(_Strict):
    """One endpoint as a tool."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    description: str = Field(min_length=1, max_length=1000)
    method: Method
    url: str
    risk: RiskLevel | None = None
    """None: derived from the method (`DEFAULT_RISK`)."""
    parameters: list[Parameter] = Field(default_factory=list)
    auth: Auth | None = None
    response: ResponseSpec = Field(default_factory=ResponseSpec)
    timeout: float = Field(default=15.0, gt=0, le=120)
    """Seconds for the whole call, retries excluded."""

    @model_validator(mode="before")
    @classmethod
    def _upper_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": data["method"].upper()}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an http:// or https:// address, not {self.url!r}")
        if _PLACEHOLDER.search(parts.netloc) or _PLACEHOLDER.search(parts.query):
            raise ValueError("url placeholders {…} may only appear in the path")
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameters named twice: {', '.join(duplicates)}")
        placeholders = set(_PLACEHOLDER.findall(parts.path))
        path_params = {p.name for p in self.parameters if p.in_ == "path"}
        if placeholders - path_params:
            missing = ", ".join(sorted(placeholders - path_params))
            raise ValueError(f"url placeholders without an `in: path` parameter: {missing}")
        if path_params - placeholders:
            extra = ", ".join(sorted(path_params - placeholders))
            raise ValueError(f"path parameters without a {{placeholder}} in url: {extra}")
        if self.method not in BODY_METHODS and any(p.in_ == "body" for p in self.parameters):
            raise ValueError(f"{self.method} sends no body; use `in: query` instead")
        return self

    @property
    def effective_risk(self) -> RiskLevel:
        """The declared risk, or the method's default."""
        return self.risk or DEFAULT_RISK[self.method]
