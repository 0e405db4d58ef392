"""Where hub may send: an egress policy against server-side request forgery (SSRF).

Target URLs come from admins, and what a target answers is readable in the attempts (a response
excerpt), so hub must not become a way to read the cloud metadata service or an internal admin page:

- always refused: link-local addresses (169.254.0.0/16 with the cloud metadata service, fe80::/10),
  unspecified, multicast and reserved ones, IPv4-mapped IPv6 forms included;
- with ``HUB_BLOCK_PRIVATE_TARGETS=true`` also every address that is not globally routable (loopback,
  10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7…). Off by default: a self-hosted hub often posts to
  an RSE inside the company network (Mattermost, Rocket.Chat).

Host names are checked where they are resolved, when the connection is made (so a DNS answer that
changes between a check and the connect cannot slip through); IP literals before the request. Redirects
are never followed.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# cloud metadata services outside link-local: refused whatever HUB_BLOCK_PRIVATE_TARGETS says
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("fd00:ec2::254", "100.100.100.200", "168.63.129.16", "192.0.0.192")  # AWS v6, Alibaba, Azure, OCI
)
# not globally routable, though the interpreter's tables may call them global
NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "fec0::/10", "100.64.0.0/10"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressBlocked(OSError):
    """The destination is refused by the egress policy: a configuration error, not a transient one."""


@dataclass(frozen=True)
class EgressPolicy:
    block_private: bool = False

    def refusal(self, ip: IPAddress) -> str | None:
        """Why hub must not connect to ``ip``; None when it may."""
        if isinstance(ip, ipaddress.IPv6Address):  # an IPv4 address wrapped in IPv6 is judged as itself
            if ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            elif ip.sixtofour is not None:
                ip = ip.sixtofour
            elif ip in NAT64:
                ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip in METADATA:
            return "a cloud metadata service"
        if ip.is_link_local:
            return "link-local (cloud metadata service)"
        internal = "not globally routable (HUB_BLOCK_PRIVATE_TARGETS)" if self.block_private else None
        if ip.is_loopback:  # before is_reserved, which ::1 also is
            return internal
        if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
            return "not a unicast destination"
        return None if ip.is_global and not any(ip in n for n in NOT_GLOBAL) else internal

    def check_ip(self, ip: IPAddress, host: str) -> None:
        reason = self.refusal(ip)
        if reason:
            raise EgressBlocked(f"destination {host} ({ip}) refused by hub's egress policy: {reason}")

    def check_url(self, url: str) -> None:
        """Refuse a URL whose host is a refused IP literal (host names are checked at connect time)."""
        host, ip = _literal_host(url)
        if ip is not None:
            self.check_ip(ip, host)


@functools.lru_cache(maxsize=4096)
def _literal_host(url: str) -> tuple[str, IPAddress | None]:
    """A URL's host, and its address when it is an IP literal (parsed once per URL: sends are hot)."""
    host = httpx.URL(url).host
    try:
        return host, ipaddress.ip_address(host)
    except ValueError:
        return host, None


class PolicyResolver(AbstractResolver):
    """aiohttp resolver that drops refused addresses; none left is an :class:`EgressBlocked`."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        allowed = [a for a in answers if self.policy.refusal(ipaddress.ip_address(a["host"])) is None]
        if not allowed:
            self.policy.check_ip(ipaddress.ip_address(answers[0]["host"]), host)
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def egress_refusal(exc: BaseException) -> EgressBlocked | None:
    """The EgressBlocked behind a client error (httpx wraps aiohttp, which wraps the resolver's error)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, EgressBlocked):
            return err
        stack += [err.__cause__, err.__context__, getattr(err, "os_error", None)]
    return None
