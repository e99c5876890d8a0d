"""Vetting an address and connecting to exactly the address that was vetted.

`vet` resolves a URL's host once and checks every answer; `open_pinned` then connects to one of
those answers while the Host header and the TLS server name (SNI, certificate check) keep the
original name. A second lookup never happens, so DNS rebinding cannot swap in a private address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import httpx

from automation.net.errors import ConnectFailed, NetworkRefused
from automation.tools.scopes import is_private_host

if TYPE_CHECKING:
    from automation.net.guard import HostPolicy

_METADATA_NAMES: Final = frozenset({"metadata.google.internal", "metadata"})
_METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)


def parse_url(raw: str, *, policy: HostPolicy, base: httpx.URL | None = None) -> httpx.URL:
    """`raw` (relative to `base`, for a redirect) as an http(s) URL with a host.

    Raises:
        NetworkRefused: not a valid URL, not http(s), or no host.
    """
    try:
        url = base.join(raw) if base is not None else httpx.URL(raw.strip())
    except httpx.InvalidURL as exc:
        raise NetworkRefused(f"{raw!r} is not a valid URL ({exc})") from exc
    if url.scheme not in ("http", "https"):
        shown = str(url) if base is not None else raw
        raise NetworkRefused(
            f"refusing to {policy.verb} {shown}: only http:// and https:// {policy.noun} can be "
            f"{policy.done}"
        )
    if not url.raw_host:
        raise NetworkRefused(f"{raw!r} has no host name")
    return url


def is_metadata_endpoint(host: str) -> bool:
    """Is `host` (a name or literal address) a cloud metadata endpoint?"""
    name = host.strip("[]").rstrip(".").lower()
    if name in _METADATA_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped in _METADATA_ADDRESSES
    return address in _METADATA_ADDRESSES


async def vet(url: httpx.URL, policy: HostPolicy, *, via: str) -> list[str]:
    """The addresses `url` may be fetched from; `via` tells which redirect led here.

    Raises:
        NetworkRefused: a metadata endpoint, a host the policy does not allow, or a name that
            resolves to a private address the policy does not name.
        ConnectFailed: the name does not resolve.
    """
    host = url.raw_host.decode("ascii").lower()
    port = url.port or (443 if url.scheme == "https" else 80)
    refusal = f"refusing to {policy.verb} {url}{via}"
    hint = f"{policy.setting}; private and loopback addresses must be listed by name"
    if is_metadata_endpoint(host):
        raise NetworkRefused(f"{refusal}: {host} {_METADATA_WHY}")
    if not policy.allows(host, port):
        raise NetworkRefused(
            f"{refusal}: {host} is not among the {policy.kind} the policy allows ({hint})"
        )
    if _is_address(host):
        return [host]  # the policy has already judged a literal address
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConnectFailed(
            f"cannot {policy.verb} {url}{via}: host name {host} not found ({reason})"
        ) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if metadata := [a for a in addresses if is_metadata_endpoint(a)]:
        raise NetworkRefused(f"{refusal}: {host} resolves to {metadata[0]}, which {_METADATA_WHY}")
    private = [a for a in addresses if is_private_host(a)]
    if private and not policy.names(host, port):
        raise NetworkRefused(
            f"{refusal}: {host} resolves to a private address ({private[0]}); only "
            f"{policy.kind} listed by exact name in {policy.setting} may"
        )
    return addresses


_METADATA_WHY: Final = (
    "is a cloud metadata endpoint, which hands out the machine's credentials; it is refused "
    "even when the policy lists it"
)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def open_pinned(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    addresses: Sequence[str],
    *,
    headers: httpx.Headers,
    content: bytes | None,
) -> httpx.Response:
    """Send the request to one of the vetted `addresses`, keeping the name for Host and TLS."""
    pinned_headers = headers.copy()
    pinned_headers["Host"] = url.netloc.decode("ascii")
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")

    def pinned(address: str) -> httpx.Request:
        return client.build_request(
            method,
            url.copy_with(host=address),
            headers=pinned_headers,
            content=content,
            extensions=extensions,
        )

    for address in addresses[:-1]:
        try:
            return await client.send(pinned(address), stream=True)
        except httpx.ConnectError:
            continue  # the next address may answer (no IPv6 route, one server down)
    return await client.send(pinned(addresses[-1]), stream=True)
