"""The egress policy against SSRF: refused addresses never get a request, at config time or at send time,
including host names that resolve to them (checked when the connection is made)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hub.targets.egress import EgressBlocked, EgressPolicy, PolicyResolver, egress_refusal
from tests.conftest import create_pipeline, make_settings, running_app, wait_for
from tests.helpers import github_issue, github_request
from tests.receiver import Receiver, serve_receiver

ALWAYS_REFUSED = [
    "fd00:ec2::254",  # cloud metadata outside link-local: AWS over IPv6, Alibaba, Azure, Oracle
    "100.100.100.200",
    "168.63.129.16",
    "192.0.0.192",
    "2002:a9fe:a9fe::",  # 6to4 and NAT64 forms of 169.254.169.254
    "64:ff9b::a9fe:a9fe",
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "240.0.0.1",
    "::ffff:169.254.169.254",
]
PRIVATE = [
    "2002:7f00:1::1",  # 6to4 form of 127.0.0.1
    "fec0::1",  # site-local
    "192.0.0.8",
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "::1",
    "fd00::1",
    "::ffff:127.0.0.1",
    "198.18.0.1",
]
PUBLIC = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]


@pytest.mark.parametrize("ip", ALWAYS_REFUSED)
def test_link_local_and_non_unicast_are_always_refused(ip: str) -> None:
    assert EgressPolicy(block_private=False).refusal(ipaddress.ip_address(ip)) is not None


@pytest.mark.parametrize("ip", PRIVATE)
def test_internal_addresses_are_refused_only_when_asked(ip: str) -> None:
    assert EgressPolicy(block_private=False).refusal(ipaddress.ip_address(ip)) is None
    assert EgressPolicy(block_private=True).refusal(ipaddress.ip_address(ip)) is not None


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass(ip: str) -> None:
    assert EgressPolicy(block_private=True).refusal(ipaddress.ip_address(ip)) is None


def test_url_checks_ip_literals_only() -> None:
    policy = EgressPolicy(block_private=True)
    with pytest.raises(EgressBlocked):
        policy.check_url("http://[::ffff:127.0.0.1]:8080/x")
    with pytest.raises(EgressBlocked):
        policy.check_url("http://169.254.169.254/latest/meta-data/")
    policy.check_url("https://hooks.slack.com/services/T/B/X")  # names are checked when resolved


class _FixedResolver(AbstractResolver):
    def __init__(self, *ips: str) -> None:
        self.ips = ips

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=ip, port=port, family=family, proto=0, flags=0) for ip in self.ips]

    async def close(self) -> None:
        return None


async def test_resolver_drops_refused_answers_and_refuses_when_none_is_left() -> None:
    mixed = PolicyResolver(EgressPolicy(), _FixedResolver("169.254.169.254", "93.184.216.34"))
    assert [a["host"] for a in await mixed.resolve("rebind.example", 80)] == ["93.184.216.34"]
    only_bad = PolicyResolver(EgressPolicy(), _FixedResolver("169.254.169.254"))
    with pytest.raises(EgressBlocked, match=r"rebind\.example"):
        await only_bad.resolve("rebind.example", 80)


def test_the_refusal_is_found_behind_client_errors() -> None:
    blocked = EgressBlocked("refused")
    outer = httpx.ConnectError("cannot connect")
    middle = OSError("aiohttp")
    middle.os_error = blocked  # type: ignore[attr-defined]  # as aiohttp's ClientConnectorError carries it
    outer.__cause__ = middle
    assert egress_refusal(outer) is blocked
    assert egress_refusal(httpx.ConnectError("plain")) is None


async def test_targets_on_refused_addresses_are_422_at_config_time(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path, block_private_targets=True)) as (_, client):
        for url in ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9/x", "http://[::1]/x"):
            resp = await client.post("/api/v1/targets", json={"kind": "webhook", "name": "w", "url": url})
            assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_config"), url
            assert resp.json()["error"]["details"]["field"] == "url"


async def test_a_name_resolving_to_a_refused_address_is_dead_not_sent(tmp_path: Path) -> None:
    """localhost resolves to loopback: with private targets blocked the send is refused when connecting."""
    async with (
        serve_receiver(Receiver()) as rx,
        running_app(make_settings(tmp_path, block_private_targets=True)) as (
            _,
            client,
        ),
    ):
        url = rx.url.replace("127.0.0.1", "localhost")
        ids = await create_pipeline(client, {"kind": "webhook", "name": "w", "url": url})
        body, headers = github_request(github_issue(1))
        event_id = (await client.post(f"/hooks/{ids['source_id']}", content=body, headers=headers)).json()["event_id"]

        async def dead() -> bool:
            detail: dict[str, Any] = (await client.get(f"/api/v1/events/{event_id}")).json()
            return bool(detail["deliveries"]) and detail["deliveries"][0]["status"] == "dead"

        await wait_for(dead)
        delivery = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]
        assert "egress policy" in delivery["last_error"] and delivery["attempts"] == 1
        assert rx.requests == []
