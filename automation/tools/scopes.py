"""Data scopes: which memory kinds, calendars, sites and API hosts a tool may read.

The policy file (agent/policy) builds one `DataScopes` per process; tools receive it in their
`ToolContext` and check it before they read. It lives here, beside the tools, because tools are
where reads happen and `automation` may not import `agent`.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p.lower()) for p in patterns)


def is_private_host(host: str) -> bool:
    """True for loopback, private, link-local and other non-public literal addresses and names.

    Only literal addresses and well-known local names are recognised here; tools that connect
    must also check the address a name resolves to (DNS can point anywhere).
    """
    name = host.strip("[]").lower()
    if name in {"localhost", "localhost.localdomain"} or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name.endswith((".local", ".internal", ".lan", ".home.arpa"))
    return not address.is_global


@dataclass(frozen=True, kw_only=True)
class DataScopes:
    """What the agent may read; `*` means any public target, private ones must be listed."""

    memory_kinds: tuple[str, ...] = ("*",)
    calendars: tuple[str, ...] = ("*",)
    sites: tuple[str, ...] = ("*",)
    api_hosts: tuple[str, ...] = ("*",)

    def allows_memory_kind(self, kind: str) -> bool:
        """May a memory of this kind enter a prompt or a tool result?"""
        return _matches(self.memory_kinds, kind.lower())

    def memory_kinds_filter(self) -> frozenset[str] | None:
        """The allowed kinds for a query, or None when every kind is allowed."""
        if "*" in self.memory_kinds:
            return None
        return frozenset(k.lower() for k in self.memory_kinds)

    def allows_calendar(self, name: str) -> bool:
        """May events of the calendar called `name` be read?"""
        return _matches(self.calendars, name.lower())

    def allows_site(self, host: str, port: int | None = None) -> bool:
        """May a web page on `host` be read? See `_allows_host`."""
        return self._allows_host(self.sites, host, port)

    def allows_api_host(self, host: str, port: int | None = None) -> bool:
        """May an API on `host` be called? See `_allows_host`."""
        return self._allows_host(self.api_hosts, host, port)

    def names_site(self, host: str, port: int) -> bool:
        """Does a `sites` pattern name `host` exactly? See `_names_host`."""
        return self._names_host(self.sites, host, port)

    def names_api_host(self, host: str, port: int) -> bool:
        """Does an `api_hosts` pattern name `host` exactly? See `_names_host`."""
        return self._names_host(self.api_hosts, host, port)

    @staticmethod
    def _names_host(patterns: tuple[str, ...], host: str, port: int) -> bool:
        # A name that resolves to a private address must be listed as itself: a port wildcard is
        # fine, a host wildcard ("*", "local*") is not.
        for pattern in patterns:
            name, _, port_pattern = pattern.lower().partition(":")
            if name == host.lower() and fnmatch.fnmatchcase(str(port), port_pattern or "*"):
                return True
        return False

    @staticmethod
    def _allows_host(patterns: tuple[str, ...], host: str, port: int | None) -> bool:
        # A pattern may name the host or host:port. "*" covers public hosts only: loopback and
        # private addresses (the user's router, the cluster's services) must be named.
        host = host.strip("[]").lower()
        candidates = [host] if port is None else [host, f"{host}:{port}"]
        if is_private_host(host):
            explicit = tuple(p for p in patterns if not set(p) <= {"*"})
            return any(_matches(explicit, c) for c in candidates)
        return any(_matches(patterns, c) for c in candidates)
