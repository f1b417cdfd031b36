"""Where `fetch_page` may connect: the address policy that stops server-side request forgery.

A URL's host is resolved once and every address it resolves to must be public, unless the
application's allow-list covers it. The fetcher then connects to the address that was checked,
so a DNS answer that changes between the check and the connection (DNS rebinding) cannot
send the request elsewhere. IPv4 addresses hidden inside IPv6 ones (IPv4-mapped, 6to4, Teredo,
NAT64) are checked as the IPv4 address they carry. Numeric host forms such as `2130706433` or
`0x7f.1` go through the resolver like any name and are judged by the address they become.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import TypeAlias

from agentlib import ConfigurationError, ToolError

__all__ = ["AddressPolicy", "IPAddress", "Resolver", "address_problem", "system_resolver"]

IPAddress: TypeAlias = IPv4Address | IPv6Address

Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]
"""`(host, port) -> addresses as strings`; the default asks the system (`getaddrinfo`)."""

# Instance metadata services hand out cloud credentials: AWS/GCP/Azure/OpenStack, AWS ECS task
# metadata, the AWS IPv6 endpoint, Alibaba Cloud, and Azure's platform endpoint (which is a
# public address, so only this list catches it).
_METADATA_ADDRESSES = frozenset(
    ip_address(text)
    for text in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
_NAT64_NETWORKS = (ip_network("64:ff9b::/96"), ip_network("64:ff9b:1::/48"))
_PROBLEMS = (
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_unspecified", "an unspecified address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve `host` with the system resolver, returning every address (IPv4 and IPv6)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64_NETWORKS):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Say why `address` must not be fetched by default, or return `None` when it is public."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner)
            if problem is not None:
                return f"{problem} (inside {address})"
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    for attribute, description in _PROBLEMS:
        if getattr(address, attribute):
            return description
    if not address.is_global:
        return "not a public address"
    return None


def normalise_host(host: str) -> str:
    """Lower-case a host name and drop the trailing dot and IPv6 brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def parse_address(text: str) -> IPAddress | None:
    """Parse a canonical IP literal (scope ids dropped); `None` for anything else."""
    try:
        return ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _is_metadata(address: IPAddress) -> bool:
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and inner in _METADATA_ADDRESSES:
            return True
    return address in _METADATA_ADDRESSES


class AddressPolicy:
    """Decides which addresses a fetch may connect to.

    Args:
        allowed_hosts: Entries that open non-public addresses: IP addresses or networks
            (`127.0.0.1`, `10.0.0.0/8`, `::1`) or host names (`wiki.internal`). A host name
            opens whatever it resolves to except cloud metadata addresses, which only an IP
            entry covering them opens.

    Raises:
        ConfigurationError: An entry is empty.
    """

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self._networks: list[object] = []
        self._names: set[str] = set()
        for entry in allowed_hosts:
            text = normalise_host(entry)
            if not text:
                raise ConfigurationError(
                    "allowed_hosts contains an empty entry; give IP addresses, networks "
                    "such as '10.0.0.0/8', or host names"
                )
            try:
                self._networks.append(ip_network(text, strict=False))
            except ValueError:
                self._names.add(text)

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether the allow-list opens `address`, reached through the name `host`."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, IPv6Address) and (inner := embedded_ipv4(address)) is not None:
            candidates.append(inner)
        for network in self._networks:
            if any(candidate in network for candidate in candidates):  # type: ignore[operator]
                return True
        return normalise_host(host) in self._names and not _is_metadata(address)

    def problem(self, host: str, address: IPAddress) -> str | None:
        """Why connecting to `address` (for `host`) is refused, or `None` when it is allowed."""
        if self.allows(host, address):
            return None
        return address_problem(address)

    async def resolve(self, host: str, port: int, resolver: Resolver) -> list[IPAddress]:
        """Resolve `host` and check every address; return them in the resolver's order.

        Raises:
            ToolError: The host does not resolve, or one of its addresses is not allowed.
        """
        literal = parse_address(host.strip("[]"))
        if literal is not None:
            addresses = [literal]
        else:
            try:
                answers = await resolver(host, port)
            except (OSError, UnicodeError, ValueError) as exc:  # IDNA fails with UnicodeError
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                raise ToolError(
                    f"cannot resolve the host {host!r} ({reason}); check the address, and "
                    "note that pages cannot be fetched without a network connection"
                ) from exc
            addresses = list(dict.fromkeys(a for a in map(parse_address, answers) if a))
            if not addresses:
                raise ToolError(f"the host {host!r} has no address; check the URL")
        for address in addresses:
            problem = self.problem(host, address)
            if problem is not None:
                shown = f"{host!r}," if literal is not None else f"{host!r} resolves to {address},"
                raise ToolError(
                    f"refusing to fetch from {shown} {problem}: only public web addresses "
                    "can be fetched"
                )
        return addresses
