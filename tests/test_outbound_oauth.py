"""Outbound OAuth2 (authlib as an httpx.Auth) against a local token endpoint: client credentials for the
generic webhook (RFC 6749 §4.4, client authenticated with HTTP Basic, §2.3.1), refresh-token renewal of
a user's delegated token for Viva Engage (§6). Tokens cached per credential, renewed before expiry and
once on a 401, encrypted at rest, never in what hub keeps or returns."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.crypto import SecretBox
from hub.db import tables as t
from hub.mapping.post import Post
from hub.runtime import Runtime
from hub.targets.base import DeliveryContext, SendResult
from hub.targets.oauth import TokenCache
from hub.targets.registry import TARGETS
from hub.targets.stores import SqlTokenStore
from tests.conftest import create, create_pipeline, fire, wait_for
from tests.receiver import Received, Receiver

TOKEN_URL = "https://login.example.com/oauth2/token"
HOOK = "https://receiver.example.com/hub"
YAMMER = "https://www.yammer.com/api/v1/messages.json"
POST = Post(title="Issue #1 opened", thread_key="github:o/r#1")
CLIENT = {"token_url": TOKEN_URL, "client_id": "hub-client", "client_secret": "CS-secret-91", "scope": "posts.write"}
REFRESH = {"token_url": TOKEN_URL, "client_id": "app-id", "client_secret": "APP-secret-17", "refresh_token": "RT-1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeAuthServer:
    """A token endpoint and a resource, as httpx handlers; records what they received."""

    def __init__(self, resource: list[int] | None = None, token_status: int = 200) -> None:
        self.tokens_issued = 0
        self.token_requests: list[httpx.Request] = []
        self.resource_requests: list[httpx.Request] = []
        self.resource = resource or []  # statuses to answer first, then success
        self.token_status = token_status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_requests.append(request)
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_client", "error_description": "no"})
            self.tokens_issued += 1
            n = self.tokens_issued
            body = {
                "access_token": f"AT-{n}",
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": f"RT-{n + 1}",
            }
            return httpx.Response(200, json=body)
        self.resource_requests.append(request)
        status = self.resource.pop(0) if self.resource else 201
        if status == 201 and "yammer" in str(request.url):
            return httpx.Response(201, json={"messages": [{"id": 5}]})
        return httpx.Response(status, text=json.dumps({"echo": request.headers.get("authorization")}))


def form_of(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


async def deliver(kind: str, settings: dict[str, Any], server: FakeAuthServer, cache: TokenCache) -> SendResult:
    target = TARGETS[kind]
    config = target.Config.model_validate(settings)
    ctx = DeliveryContext("dlv_1", "evt_1", "tgt_1", cache_client(cache), 5.0, tokens=cache)
    return await target.deliver(POST, config, ctx)


def cache_client(cache: TokenCache) -> httpx.AsyncClient:
    return cache._client  # type: ignore[return-value]  # the client the cache and the sends share


def make_cache(server: FakeAuthServer, clock: Clock | None = None, store: Any = None) -> TokenCache:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return TokenCache(client, store, clock=clock or Clock())


WEBHOOK = {"url": HOOK, "oauth2": CLIENT}


async def test_client_credentials_are_fetched_once_and_reused() -> None:
    server = FakeAuthServer()
    cache = make_cache(server)
    for _ in range(3):
        assert (await deliver("webhook", WEBHOOK, server, cache)).outcome == "delivered"
    assert server.tokens_issued == 1
    token_request = server.token_requests[0]
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form_of(token_request) == {"grant_type": "client_credentials", "scope": "posts.write"}
    basic = base64.b64encode(b"hub-client:CS-secret-91").decode()
    assert token_request.headers["authorization"] == f"Basic {basic}"  # RFC 6749 §2.3.1
    assert {r.headers["authorization"] for r in server.resource_requests} == {"Bearer AT-1"}


async def test_concurrent_sends_share_one_token_request() -> None:
    server = FakeAuthServer()
    cache = make_cache(server)
    results = await asyncio.gather(*(deliver("webhook", WEBHOOK, server, cache) for _ in range(8)))
    assert {r.outcome for r in results} == {"delivered"} and server.tokens_issued == 1


async def test_a_token_is_renewed_before_it_expires() -> None:
    server, clock = FakeAuthServer(), Clock()
    cache = make_cache(server, clock)
    await deliver("webhook", WEBHOOK, server, cache)
    clock.now += 3600 - 90  # still valid for 90 s: used
    await deliver("webhook", WEBHOOK, server, cache)
    clock.now += 60  # valid for 30 s more: inside the leeway, renewed first
    await deliver("webhook", WEBHOOK, server, cache)
    assert [r.headers["authorization"] for r in server.resource_requests] == [
        "Bearer AT-1",
        "Bearer AT-1",
        "Bearer AT-2",
    ]


async def test_a_401_renews_the_token_once() -> None:
    server = FakeAuthServer(resource=[401])
    cache = make_cache(server)
    result = await deliver("webhook", WEBHOOK, server, cache)
    assert result.outcome == "delivered"
    assert [r.headers["authorization"] for r in server.resource_requests] == ["Bearer AT-1", "Bearer AT-2"]
    refused = FakeAuthServer(resource=[401, 401, 401])
    result = await deliver("webhook", WEBHOOK, refused, make_cache(refused))
    assert (result.outcome, result.status_code) == ("dead", 401)
    assert len(refused.resource_requests) == 2 and refused.tokens_issued == 2  # once, not in a loop


@pytest.mark.parametrize(("status", "outcome"), [(401, "dead"), (400, "dead"), (503, "retry"), (429, "retry")])
async def test_token_endpoint_failures(status: int, outcome: str) -> None:
    server = FakeAuthServer(token_status=status)
    result = await deliver("webhook", WEBHOOK, server, make_cache(server))
    assert result.outcome == outcome
    assert result.error is not None and "token endpoint" in result.error
    assert "CS-secret-91" not in result.error
    assert server.resource_requests == []  # nothing is sent without a token


async def test_an_unreachable_token_endpoint_is_retried() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    cache = TokenCache(httpx.AsyncClient(transport=httpx.MockTransport(down)))
    result = await deliver("webhook", WEBHOOK, FakeAuthServer(), cache)
    assert result.outcome == "retry" and result.error is not None and "unreachable" in result.error


async def test_tokens_never_reach_what_hub_keeps() -> None:
    server = FakeAuthServer(resource=[400])  # the resource echoes the Authorization header it got
    result = await deliver("webhook", WEBHOOK, server, make_cache(server))
    assert result.outcome == "dead"
    assert "AT-1" not in f"{result.response_excerpt} {result.error}"
    assert (
        TARGETS["webhook"]
        .preview(POST, TARGETS["webhook"].Config.model_validate(WEBHOOK))["auth"]
        .startswith("OAuth2 bearer (client credentials")
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(t.metadata.create_all)
    yield eng
    await eng.dispose()


async def test_tokens_are_kept_encrypted_and_survive_a_restart(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine, SecretBox("a-test-key-of-enough-length"))
    server = FakeAuthServer()
    await deliver("webhook", WEBHOOK, server, make_cache(server, store=store))
    async with engine.connect() as conn:
        sealed = await conn.scalar(sa.select(t.oauth_tokens.c.token_enc))
    assert sealed and "AT-1" not in sealed
    restarted = make_cache(server, store=store)  # another process: the token is read, not fetched
    await deliver("webhook", WEBHOOK, server, restarted)
    assert server.tokens_issued == 1 and server.resource_requests[-1].headers["authorization"] == "Bearer AT-1"


async def test_viva_engage_renews_the_users_token_with_the_refresh_token(engine: AsyncEngine) -> None:
    """Viva Engage takes delegated tokens only: the configured one is used until refused (401), then
    renewed with the refresh token; a rotated refresh token is the one used next, after a restart too."""
    store = SqlTokenStore(engine, SecretBox("a-test-key-of-enough-length"))
    settings = {"group_id": 7, "token": "VE-OLD", "oauth2": REFRESH}
    server, clock = FakeAuthServer(resource=[401]), Clock()
    result = await deliver("viva-engage", settings, server, make_cache(server, clock, store))
    assert (result.outcome, result.remote_id) == ("delivered", "5")
    auths = [r.headers["authorization"] for r in server.resource_requests]
    assert auths == ["Bearer VE-OLD", "Bearer AT-1"]
    assert form_of(server.token_requests[0]) == {"grant_type": "refresh_token", "refresh_token": "RT-1"}
    assert (
        server.token_requests[0].headers["authorization"]
        == "Basic " + base64.b64encode(b"app-id:APP-secret-17").decode()
    )
    clock.now += 3600  # expired: renewed before sending, with the refresh token the endpoint rotated to
    await deliver("viva-engage", settings, server, make_cache(server, clock, store))
    assert form_of(server.token_requests[1])["refresh_token"] == "RT-2"
    assert server.resource_requests[-1].headers["authorization"] == "Bearer AT-2"
    assert "VE-OLD" not in json.dumps(result.response_excerpt)


async def test_a_worker_signs_with_oauth2_through_the_runtime(
    client: httpx.AsyncClient, receiver: Receiver, runtime: Runtime
) -> None:
    """The whole path: the target's oauth2 settings, the runtime's token cache and store, the receiver."""

    def rse(got: Received) -> tuple[int, dict[str, str], bytes]:
        if got.path == "/token":
            return 200, {}, json.dumps({"access_token": "AT-live", "token_type": "Bearer", "expires_in": 600}).encode()
        return 204, {}, b""

    receiver.respond = rse
    oauth2 = {**CLIENT, "token_url": f"{receiver.base}/token"}
    ids = await create_pipeline(
        client, {"kind": "webhook", "name": "w", "url": f"{receiver.base}/hook", "oauth2": oauth2}
    )
    for n in (1, 2):
        await fire(client, ids["source_id"], n)

    async def both() -> bool:
        return len([r for r in receiver.requests if r.path == "/hook"]) == 2

    await wait_for(both)
    assert [r.path for r in receiver.requests].count("/token") == 1
    assert {r.headers["authorization"] for r in receiver.requests if r.path == "/hook"} == {"Bearer AT-live"}
    async with runtime.engine.connect() as conn:
        sealed = await conn.scalar(sa.select(t.oauth_tokens.c.token_enc))
    assert sealed and "AT-live" not in sealed


async def test_the_api_keeps_oauth2_secrets_write_only(client: httpx.AsyncClient) -> None:
    tgt = await create(client, "/api/v1/targets", {"kind": "webhook", "name": "w", "url": HOOK, "oauth2": CLIENT})
    assert tgt["secrets_set"] == ["oauth2.client_secret"]
    assert tgt["settings"]["oauth2"] == {"token_url": TOKEN_URL, "client_id": "hub-client", "scope": "posts.write"}
    patched = await client.patch(f"/api/v1/targets/{tgt['id']}", json={"oauth2": {"scope": "posts.read"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"]["oauth2"]["scope"] == "posts.read"  # merged: the secret is kept
    assert patched.json()["secrets_set"] == ["oauth2.client_secret"]
    listed = (await client.get("/api/v1/targets")).text
    assert "CS-secret-91" not in listed + json.dumps(tgt) + patched.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "url": HOOK, "oauth2": CLIENT, "bearer_token": "b"}, ""),
        (
            {"kind": "webhook", "url": HOOK, "oauth2": {**CLIENT, "token_url": "http://169.254.169.254/t"}},
            "oauth2.token_url",
        ),
        ({"kind": "webhook", "url": HOOK, "oauth2": {**CLIENT, "client_secret": None}}, "oauth2.client_secret"),
        ({"kind": "slack-api", "channel": "C1"}, "token"),
        ({"kind": "viva-engage", "token": "t", "group_id": "general"}, "group_id"),
        ({"kind": "zulip", "url": "https://z.example.com", "username": "b", "token": "k"}, "stream"),
        ({"kind": "carrier-pigeon"}, "kind"),
    ],
)
async def test_bad_target_settings_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/v1/targets", json={"name": "x", **body})
    error = resp.json()["error"]
    assert (resp.status_code, error["code"], error["details"]["field"]) == (422, "invalid_config", field), error
    assert "CS-secret-91" not in resp.text
