"""OpenAPI security requirements as a declarative tool's `auth`, by secret name.

A tool sends at most one credential, read by name from `dadang secrets` at call time:

- `http` + `bearer` → `{type: bearer, secret: <prefix>_token}`
- `apiKey` in a header or the query → `{type: header|query, name: …, secret: <prefix>_api_key}`

Everything else (OAuth 2, OpenID Connect, HTTP basic, cookies, mutual TLS, two schemes required
together) cannot be filled in automatically: the operations are imported without `auth` and one
warning per scheme tells the user what to do. Of several alternatives the first usable one wins,
and `security: []` on an operation means it needs no credential at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from automation.http_tools.openapi_refs import Refs

_HEADER_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_LISTED: Final = 3
"""Operations named in a warning before "and N more"."""


@dataclass(kw_only=True)
class SecurityMapper:
    """Chooses each operation's `auth`, and remembers the schemes no tool could use."""

    document: dict[str, Any]
    refs: Refs
    prefix: str
    _gaps: dict[str, list[str]] = field(default_factory=dict)

    def auth_for(self, operation: dict[str, Any], *, label: str) -> dict[str, str] | None:
        """The `auth` of the operation called `label`, or None (no credential, or none usable)."""
        requirements = operation.get("security", self.document.get("security"))
        if not isinstance(requirements, list) or not requirements:
            return None
        unusable: list[str] = []
        for requirement in requirements:
            if not isinstance(requirement, dict):
                continue
            if not requirement:
                continue  # `{}`: anonymous access is one alternative; prefer a credential
            names = sorted(map(str, requirement))
            if len(names) > 1:
                unusable.append(" + ".join(names))
                continue
            auth = self._scheme_auth(names[0])
            if auth is not None:
                return auth
            unusable.append(names[0])
        if {} not in requirements:
            for name in unusable:
                self._gaps.setdefault(name, []).append(label)
        return None

    def warnings(self) -> list[str]:
        """One line per scheme that some operation needs but no tool can send."""
        lines = []
        for name, labels in self._gaps.items():
            shown = ", ".join(labels[:_LISTED])
            more = f" and {len(labels) - _LISTED} more" if len(labels) > _LISTED else ""
            lines.append(
                f"security scheme {name!r} ({self._describe(name)}) is needed by {shown}{more}, "
                f"imported without auth: {self._advice(name)}"
            )
        return lines

    def _scheme(self, name: str) -> dict[str, Any] | None:
        schemes = (self.document.get("components") or {}).get("securitySchemes") or {}
        found = self.refs.resolve(schemes.get(name)) if isinstance(schemes, dict) else None
        return found if isinstance(found, dict) else None

    def _scheme_auth(self, name: str) -> dict[str, str] | None:
        scheme = self._scheme(name)
        if scheme is None:
            return None
        kind = str(scheme.get("type", "")).lower()
        where = str(scheme.get("in", "")).lower()
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return {"type": "bearer", "secret": f"{self.prefix}_token"}
        key_name = scheme.get("name")
        if kind != "apikey" or not isinstance(key_name, str) or not key_name:
            return None
        if where == "header" and _HEADER_NAME.match(key_name):
            return {"type": "header", "name": key_name, "secret": f"{self.prefix}_api_key"}
        if where == "query":
            return {"type": "query", "name": key_name, "secret": f"{self.prefix}_api_key"}
        return None

    def _describe(self, name: str) -> str:
        if " + " in name:
            return "several credentials at once"
        scheme = self._scheme(name)
        if scheme is None:
            return "not defined in components.securitySchemes"
        kind = str(scheme.get("type", "?"))
        detail = scheme.get("scheme") or scheme.get("in") or ""
        return f"{kind} {detail}".strip()

    def _advice(self, name: str) -> str:
        token, basic = f"{self.prefix}_token", f"{self.prefix}_basic"
        bearer = (
            f"store the token with `dadang secrets set {token}` and add "
            f"`auth: {{type: bearer, secret: {token}}}` to those tools"
        )
        scheme = self._scheme(name) or {}
        kind = str(scheme.get("type", "")).lower()
        if " + " in name:
            return "a tool sends one credential; call these operations another way"
        if kind in ("oauth2", "openidconnect"):
            return f"get an access token from the provider (it expires), then {bearer}"
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
            return (
                f"store 'Basic ' + base64 of user:password with `dadang secrets set {basic}` and "
                f"add `auth: {{type: header, name: Authorization, secret: {basic}}}` to those tools"
            )
        if kind == "apikey" and str(scheme.get("in", "")).lower() == "cookie":
            return "tools cannot send cookies; use another scheme of this API if it has one"
        return "add an `auth:` the API accepts to those tools by hand"
