"""The consent and credentials API: what the start sends the admin to, what the callback refuses, who may."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from hub.runtime import Runtime
from tests.conftest import create
from tests.helpers import GITHUB_SECRET
from tests.storage.conftest import PUBLIC_URL, storage_source, storage_state
from tests.storage.standins import CLIENT_ID, StandIns


async def test_the_start_redirects_to_the_provider_with_pkce_and_a_sealed_state(
    client: httpx.AsyncClient, standins: StandIns
) -> None:
    src = await storage_source(client, standins, "dropbox")
    start = await client.get(f"/api/v1/sources/{src['id']}/oauth/start")
    assert start.status_code == 302
    url = urlsplit(start.headers["location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{standins.base}/dropbox/oauth/authorize"
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
    assert q["redirect_uri"] == f"{PUBLIC_URL}/oauth/callback"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert q["token_access_type"] == "offline"  # Dropbox: a refresh token
    assert q["scope"] == "files.metadata.read account_info.read sharing.read"
    assert src["id"] not in q["state"] and "verifier" not in q["state"]  # sealed
    as_json = await client.get(f"/api/v1/sources/{src['id']}/oauth/start", headers={"Accept": "application/json"})
    assert as_json.json()["authorize_url"].startswith(f"{standins.base}/dropbox/oauth/authorize?")
    state = await storage_state(client, src["id"])
    assert state["redirect_uri"] == f"{PUBLIC_URL}/oauth/callback" and not state["credentials"]["set"]


async def test_the_callback_refuses_an_unknown_state_a_refusal_and_a_bad_code(
    client: httpx.AsyncClient, standins: StandIns
) -> None:
    src = await storage_source(client, standins, "microsoft-graph")
    bad = await client.get("/oauth/callback", params={"state": "forged", "code": "x"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_state")
    start = await client.get(f"/api/v1/sources/{src['id']}/oauth/start")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    denied = await client.get(
        "/oauth/callback", params={"state": state, "error": "access_denied", "error_description": "The user said no"}
    )
    assert (denied.status_code, denied.json()["error"]["code"]) == (400, "consent_refused")
    wrong = await client.get("/oauth/callback", params={"state": state, "code": "not-issued"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "code_exchange_failed")
    assert not (await storage_state(client, src["id"]))["credentials"]["set"]
    audit = (await client.get("/api/v1/audit", params={"resource_id": src["id"]})).json()
    assert "oauth_start" in str(audit)


async def test_settings_are_checked_and_other_sources_have_no_storage(
    client: httpx.AsyncClient, standins: StandIns, runtime: Runtime
) -> None:
    base = standins.settings("dropbox")
    bad = await client.post(
        "/api/v1/sources",
        json={"connector": "dropbox", "name": "x", "secret": "s", "settings": {**base, "watch_folders": "Sales"}},
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_config")
    assert "watch_folders" in bad.json()["error"]["message"]
    no_client = await client.post(
        "/api/v1/sources",
        json={"connector": "dropbox", "name": "x", "secret": "s", "settings": {"fetch_changes": True}},
    )
    assert no_client.status_code == 422 and "oauth_client_id" in no_client.json()["error"]["message"]
    github = await create(client, "/api/v1/sources", {"connector": "github", "name": "gh", "secret": GITHUB_SECRET})
    assert github["storage"] is None
    assert (await client.get(f"/api/v1/sources/{github['id']}/storage")).status_code == 409
    src = await storage_source(client, standins, "dropbox")
    assert src["storage"]["fetch_changes"] is True
    assert "oauth_client_secret" not in src["settings"] and "oauth_client_secret" in src["secret_settings_set"]


async def test_a_read_key_sees_the_state_but_cannot_connect(client: httpx.AsyncClient, standins: StandIns) -> None:
    src = await storage_source(client, standins, "google-drive")
    key = (await client.post("/api/v1/keys", json={"name": "reader", "scope": "read"})).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get(f"/api/v1/sources/{src['id']}/storage", headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/sources/{src['id']}/oauth/start", headers=headers)).status_code == 403
    put = await client.put(f"/api/v1/sources/{src['id']}/credentials", headers=headers, json={"refresh_token": "x"})
    assert put.status_code == 403
