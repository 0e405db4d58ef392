"""Single sign-on against a local OIDC stand-in: console sign-in (code + PKCE, session cookie) and JWT bearer
tokens for the API (JWKS signature, issuer, audience, expiry), groups mapped to scopes; API keys still work."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import OctKey

from hub.auth.oidc import OidcProvider
from hub.config import Settings
from tests.conftest import make_settings
from tests.helpers import AUTH
from tests.oidc_provider import API_AUDIENCE, CLIENT_ID, CLIENT_SECRET, StandInProvider, new_key, serve_provider

HUB = "http://hub.test"


@pytest.fixture
async def provider() -> AsyncIterator[StandInProvider]:
    async with serve_provider(StandInProvider()) as p:
        yield p


@pytest.fixture
def settings(tmp_path: Path, provider: StandInProvider) -> Settings:
    return make_settings(
        tmp_path,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_audience=API_AUDIENCE,
        oidc_admin_groups="hub-admins, platform",
        oidc_read_groups="hub-readers",
    )


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials but a cookie jar, as a browser on the console."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB) as c:
        yield c


async def sign_in(browser: httpx.AsyncClient, provider: StandInProvider, next_path: str = "/admin") -> httpx.Response:
    """Go through the whole sign-in; the callback's answer."""
    start = await browser.get("/auth/login", params={"next": next_path})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as idp:
        at_provider = await idp.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{HUB}/auth/callback"
    return await browser.get(f"/auth/callback?{back.query}")


async def test_console_sign_in_uses_pkce_and_opens_a_session_the_api_accepts(
    browser: httpx.AsyncClient, provider: StandInProvider
) -> None:
    done = await sign_in(browser, provider)
    assert (done.status_code, done.headers["location"]) == (302, "/admin")
    cookie = done.headers["set-cookie"]
    assert "hub_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    (asked,) = provider.authorize_requests
    assert asked["client_id"] == CLIENT_ID and asked["redirect_uri"] == f"{HUB}/auth/callback"
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["scope"] == "openid email profile" and asked["nonce"] and asked["state"]

    me = await browser.get("/auth/me")
    assert me.json() == {"kind": "oidc", "id": "u-123", "name": "ada@example.com", "scope": "admin"}
    assert (await browser.get("/api/v1/sources")).status_code == 200

    body = {"kind": "inbox", "name": "from the console"}
    forged = await browser.post("/api/v1/targets", json=body)  # what a cross-site form could send
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_header_missing"
    made = await browser.post("/api/v1/targets", json=body, headers={"X-Hub-Console": "1"})
    assert made.status_code == 201

    trail = (await browser.get("/api/v1/audit", params={"resource": "target"})).json()
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("create", {"kind": "oidc", "id": "u-123", "name": "ada@example.com"})
    ]

    out = await browser.post("/auth/logout")
    assert out.status_code == 204
    assert (await browser.get("/auth/me")).status_code == 401


async def test_a_tampered_session_cookie_is_refused(browser: httpx.AsyncClient, provider: StandInProvider) -> None:
    await sign_in(browser, provider)
    value = browser.cookies["hub_session"]
    browser.cookies.set("hub_session", value[:-6] + ("AAAAAA" if not value.endswith("AAAAAA") else "BBBBBB"))
    assert (await browser.get("/auth/me")).status_code == 401


async def test_the_callback_checks_the_sign_in_it_belongs_to(
    browser: httpx.AsyncClient, provider: StandInProvider
) -> None:
    lost = await browser.get("/auth/callback?code=abc&state=xyz")  # no sign-in started in this browser
    assert lost.status_code == 400 and lost.json()["error"]["code"] == "sign_in_expired"
    start = await browser.get("/auth/login")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    forged = await browser.get(f"/auth/callback?code=abc&state={state}x")
    assert forged.status_code == 401 and "state" in forged.json()["error"]["message"].lower()
    assert "hub_session" not in browser.cookies


async def test_a_refused_sign_in_says_why(browser: httpx.AsyncClient, provider: StandInProvider) -> None:
    provider.deny_with = "access_denied"
    done = await sign_in(browser, provider)
    assert done.status_code == 401 and "access_denied" in done.json()["error"]["message"]


async def test_someone_in_no_mapped_group_gets_no_session(
    browser: httpx.AsyncClient, provider: StandInProvider
) -> None:
    provider.user["groups"] = ["marketing"]
    done = await sign_in(browser, provider)
    assert done.status_code == 403 and done.json()["error"]["code"] == "forbidden"
    assert "hub_session" not in browser.cookies


async def test_after_sign_in_only_a_local_path(browser: httpx.AsyncClient, provider: StandInProvider) -> None:
    assert (await sign_in(browser, provider, "https://evil.example/x")).headers["location"] == "/admin"
    assert (await sign_in(browser, provider, "//evil.example/x")).headers["location"] == "/admin"
    assert (await sign_in(browser, provider, "/api/v1/events?limit=5")).headers["location"] == "/api/v1/events?limit=5"


async def _call(app: FastAPI, token: str, method: str = "GET", path: str = "/api/v1/sources") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB, headers=headers) as c:
        body: Any = {"kind": "inbox", "name": "via token"} if method == "POST" else None
        return await c.request(method, path, json=body)


async def test_bearer_tokens_map_groups_to_scopes(app: FastAPI, provider: StandInProvider) -> None:
    admin = provider.token()
    made = await _call(app, admin, "POST", "/api/v1/targets")
    assert made.status_code == 201  # a bearer token needs no console header
    reader = provider.token(groups=["hub-readers"])
    assert (await _call(app, reader)).status_code == 200
    refused = await _call(app, reader, "POST", "/api/v1/targets")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    nobody = await _call(app, provider.token(groups=["sales"]))
    assert nobody.status_code == 403
    (entry,) = (await _call(app, admin, "GET", "/api/v1/audit?resource=target")).json()
    assert entry["actor"] == {"kind": "oidc", "id": "u-123", "name": "ada@example.com"}


async def test_api_keys_keep_working_beside_sso(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB, headers=AUTH) as c:
        assert (await c.get("/auth/me")).json()["kind"] == "api_key"
        assert (await c.get("/api/v1/sources")).status_code == 200


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'kid': 'key-1'})}.{part(claims)}."


async def test_bearer_tokens_are_checked(app: FastAPI, provider: StandInProvider) -> None:
    now = int(time.time())
    stranger = new_key("key-1")  # same kid, other key: the signature cannot match
    hs256 = OctKey.import_key(b"a shared secret that the provider never uses!")
    bad = {
        "expired": provider.token(lifetime=-3600),
        "audience": provider.token(audience="another-api"),
        "issuer": provider.token(iss="https://other-idp.example"),
        "signature": jwt.encode(
            {"alg": "RS256", "kid": "key-1"},
            {"iss": provider.issuer, "aud": API_AUDIENCE, "exp": now + 60, **provider.user},
            stranger,
        ),
        "symmetric": jwt.encode(
            {"alg": "HS256", "kid": "key-1"},
            {"iss": provider.issuer, "aud": API_AUDIENCE, "exp": now + 60, **provider.user},
            hs256,
        ),
        "no expiry": provider.token(lifetime=0, exp=None),
        "unknown key": jwt.encode(
            {"alg": "RS256", "kid": "nobody-has-it"},
            {"iss": provider.issuer, "aud": API_AUDIENCE, "exp": now + 60, **provider.user},
            stranger,
        ),
        "alg none": _unsigned({"iss": provider.issuer, "aud": API_AUDIENCE, "exp": now + 60, **provider.user}),
        "list header": "W10." + provider.token().split(".", 1)[1],
    }
    for why, token in bad.items():
        resp = await _call(app, token)
        assert resp.status_code == 401, why
        assert resp.json()["error"]["code"] == "unauthorized", why
    assert "expired" in (await _call(app, bad["expired"])).json()["error"]["message"]


async def test_a_rotated_signing_key_is_fetched(
    app: FastAPI, provider: StandInProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OidcProvider, "jwks_min_refresh", 0.0)
    assert (await _call(app, provider.token())).status_code == 200
    fetches = provider.jwks_fetches
    provider.keys.insert(0, new_key("key-2"))  # the provider rotates: new tokens name key-2
    assert (await _call(app, provider.token())).status_code == 200
    assert provider.jwks_fetches == fetches + 1
    assert (await _call(app, provider.token())).status_code == 200
    assert provider.jwks_fetches == fetches + 1  # known keys are not fetched again


async def test_an_unreachable_provider_is_a_503_not_a_crash(tmp_path: Path, provider: StandInProvider) -> None:
    from tests.conftest import running_app
    from tests.receiver import free_port

    token = provider.token()
    down = make_settings(
        tmp_path, oidc_issuer=f"http://127.0.0.1:{free_port()}", oidc_client_id=CLIENT_ID, oidc_admin_groups="x"
    )
    async with running_app(down) as (app, _):
        resp = await _call(app, token)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "oidc_unavailable"
        login = await _call(app, "", "GET", "/auth/login")
        assert login.status_code == 503


async def test_groups_may_sit_in_a_nested_claim(tmp_path: Path, provider: StandInProvider) -> None:
    from tests.conftest import running_app

    settings = make_settings(
        tmp_path,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_audience=API_AUDIENCE,
        oidc_groups_claim="realm_access.roles",
        oidc_read_groups="hub-read",
    )
    async with running_app(settings) as (app, _):
        token = provider.token(groups=None, realm_access={"roles": ["offline_access", "hub-read"]})
        assert (await _call(app, token)).status_code == 200
        assert (await _call(app, token, "POST", "/api/v1/targets")).status_code == 403


async def test_login_without_sso_configured(tmp_path: Path) -> None:
    from tests.conftest import running_app

    async with running_app(make_settings(tmp_path)) as (_, client):
        resp = await client.get("/auth/login")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "oidc_not_configured"


async def test_an_issuer_with_a_trailing_slash_is_matched_exactly(tmp_path: Path, provider: StandInProvider) -> None:
    from tests.conftest import running_app

    provider.issuer_suffix = "/"
    settings = make_settings(
        tmp_path, oidc_issuer=provider.base, oidc_audience=API_AUDIENCE, oidc_admin_groups="hub-admins"
    )
    async with running_app(settings) as (app, _):
        assert (await _call(app, provider.token())).status_code == 200
        assert (await _call(app, provider.token(iss=provider.base))).status_code == 401  # not the provider's
