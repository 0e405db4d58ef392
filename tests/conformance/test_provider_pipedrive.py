"""Pipedrive as it documents its webhooks, beyond the generic suite, through the app.

https://pipedrive.readme.io/docs/guide-for-webhooks-v2 — HTTP Basic credentials set on the webhook
(http_auth_user / http_auth_password); v2 bodies {meta: {action, entity, entity_id, id, attempt…}, data, previous}.
https://pipedrive.readme.io/docs/webhooks-v2-migration-guide — "retry is now attempt" inside meta; v1 and v2
"run in parallel". https://pipedrive.readme.io/docs/guide-for-webhooks — v1 bodies {meta: {action, object, id},
current, previous, event, retry}, where meta.id is the changed object's id.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
import pytest

from tests.conformance.kit import FIXTURES, load
from tests.conformance.signers import pipedrive as signer
from tests.conftest import create

USER = signer.SETTINGS["username"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def fixture(name: str) -> dict[str, Any]:
    return load(FIXTURES / "pipedrive" / f"{name}.json")


async def pipedrive_source(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {"connector": "pipedrive", "name": "crm", "secret": signer.SECRET, "settings": {"username": USER}}
    return await create(client, "/api/v1/sources", body)


async def send(client: httpx.AsyncClient, src: dict[str, Any], payload: Any, auth: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Authorization": auth or basic(USER, signer.SECRET)}
    return await client.post(src["ingest_url"], content=json.dumps(payload).encode(), headers=headers)


async def test_a_source_needs_the_username(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/sources", json={"connector": "pipedrive", "name": "crm", "secret": "pw"})
    assert resp.status_code == 422 and resp.json()["error"]["details"]["field"] == "settings.username"


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        (basic("someone-else", signer.SECRET), "bad_signature"),
        (basic(USER, signer.WRONG_SECRET), "bad_signature"),
        ("Bearer " + signer.SECRET, "bad_signature"),
    ],
)
async def test_the_credentials_must_be_the_sources(client: httpx.AsyncClient, auth: str, code: str) -> None:
    src = await pipedrive_source(client)
    resp = await send(client, src, fixture("v2.deal.create")["payload"], auth)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, code)


async def test_a_v2_retry_has_another_attempt_but_the_same_event_id(client: httpx.AsyncClient) -> None:
    """The body of a retry differs (meta.attempt 2), its meta.id does not: stored once."""
    src = await pipedrive_source(client)
    payload = fixture("v2.deal.change.won")["payload"]
    retry = copy.deepcopy(payload)
    retry["meta"]["attempt"] = 2
    first, again = await send(client, src, payload), await send(client, src, retry)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["duplicate"] is True
    event = (await client.get(f"/api/v1/events/{first.json()['event_id']}")).json()
    assert (event["type"], event["subject"]) == ("deal.change", "deal:42")
    assert "authorization" not in event["headers"]  # credentials are never stored


async def test_v1_changes_to_one_deal_are_all_kept(client: httpx.AsyncClient) -> None:
    """v1's meta.id is the deal's id, the same for every change of the deal: never a delivery id."""
    src = await pipedrive_source(client)
    moved, won = fixture("v1.updated.deal.stage")["payload"], fixture("v1.updated.deal.won")["payload"]
    assert moved["meta"]["id"] == won["meta"]["id"] == 42
    first, second = await send(client, src, moved), await send(client, src, won)
    assert (first.status_code, second.status_code) == (202, 202)
    event = (await client.get(f"/api/v1/events/{second.json()['event_id']}")).json()
    assert (event["type"], event["subject"], event["dedup_key"]) == ("updated.deal", "deal:42", None)


async def test_one_source_takes_v1_and_v2_webhooks_side_by_side(client: httpx.AsyncClient) -> None:
    src = await pipedrive_source(client)
    for name, expected in [
        ("v2.person.create", "person.create"),
        ("v1.added.person", "added.person"),
        ("v2.organization.create", "organization.create"),
        ("v1.added.organization", "added.organization"),
    ]:
        resp = await send(client, src, fixture(name)["payload"])
        assert resp.status_code == 202, resp.text
        assert (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()["type"] == expected


async def test_a_body_of_neither_version_is_refused(client: httpx.AsyncClient) -> None:
    src = await pipedrive_source(client)
    resp = await send(client, src, {"meta": {"action": "change"}, "data": {"id": 1}})
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "missing_event_type")
