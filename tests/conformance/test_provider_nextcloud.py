"""Nextcloud's webhook_listeners app (NC 30+), as documented and as its sender is written, through the app.

https://docs.nextcloud.com/server/latest/admin_manual/webhook_listeners/index.html — registration over OCS with
authMethod "header" and authData (the headers sent as they are), the payload envelope and its examples.
nextcloud/server apps/webhook_listeners/lib/BackgroundJobs/WebhookCall.php — ``'body' => json_encode($data)``
(PHP escapes "/" as "\\/" and non-ASCII as \\uXXXX) with no Content-Type of its own; a QueuedJob, tried once.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from hub.connectors.connector import hooks_for
from tests.conformance.kit import CATALOGUE, FIXTURES, Req, body_of, context, load
from tests.conformance.signers import nextcloud as signer
from tests.conftest import create

SPEC = CATALOGUE.get("nextcloud")
assert SPEC is not None


def fixture(name: str = "NodeCreatedEvent") -> dict[str, Any]:
    return load(FIXTURES / "nextcloud" / f"{name}.json")


async def nextcloud_source(client: httpx.AsyncClient, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"connector": "nextcloud", "name": "cloud", "secret": signer.SECRET, "settings": settings or {}}
    return await create(client, "/api/v1/sources", body)


async def send(client: httpx.AsyncClient, src: dict[str, Any], body: bytes, headers: dict[str, str]) -> httpx.Response:
    """Exactly these headers (not the test client's admin Authorization)."""
    request = client.build_request("POST", src["ingest_url"], content=body, headers=headers)
    if "Authorization" not in headers:
        del request.headers["Authorization"]
    return await client.send(request)


async def test_php_escaped_json_without_a_content_type_is_read(client: httpx.AsyncClient) -> None:
    src = await nextcloud_source(client)
    body = body_of(fixture())
    assert b"\\/admin\\/files\\/" in body
    resp = await send(client, src, body, {"Authorization": f"Bearer {signer.SECRET}"})
    assert resp.status_code == 202, resp.text
    event = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert "content-type" not in event["headers"]
    assert event["type"] == "OCP\\Files\\Events\\Node\\NodeCreatedEvent"
    assert event["payload"]["event"]["node"] == {"id": 437, "path": "/admin/files/test-webhook.txt"}
    assert event["subject"] == "437"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_signature"),
        ({"Authorization": signer.SECRET}, "bad_signature"),  # authData must hold the whole "Bearer <token>"
        ({"Authorization": f"Bearer {signer.WRONG_SECRET}"}, "bad_signature"),
        ({"Authorization": f"bearer {signer.SECRET}"}, "bad_signature"),  # the value is compared as configured
    ],
)
async def test_the_default_header_is_a_bearer_token(
    client: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    src = await nextcloud_source(client)
    resp = await send(client, src, body_of(fixture()), headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, code)


async def test_a_source_names_another_header_in_its_setting(client: httpx.AsyncClient) -> None:
    src = await nextcloud_source(client, {"header": "X-Hub-Token: nc-<secret>"})
    body = body_of(fixture("NodeWrittenEvent"))
    ok = await send(client, src, body, {"X-Hub-Token": f"nc-{signer.SECRET}"})
    assert ok.status_code == 202, ok.text
    # the default header is no longer what this source expects
    other = await send(client, src, body_of(fixture()), {"Authorization": f"Bearer {signer.SECRET}"})
    assert (other.status_code, other.json()["error"]["code"]) == (401, "missing_signature")


@pytest.mark.parametrize("setting", ["X-Hub-Token nc-<secret>", "X-Hub-Token: static-value"])
async def test_a_header_setting_that_cannot_carry_the_secret_refuses_everything(
    client: httpx.AsyncClient, setting: str
) -> None:
    src = await nextcloud_source(client, {"header": setting})
    headers = {"X-Hub-Token": "static-value", "Authorization": f"Bearer {signer.SECRET}"}
    resp = await send(client, src, body_of(fixture()), headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")
    assert "settings.header must be" in resp.json()["error"]["message"]


async def test_the_same_body_sent_twice_is_one_event(client: httpx.AsyncClient) -> None:
    """No event id: the body's hash, counted within 60 s (a later identical change must still get through)."""
    src = await nextcloud_source(client)
    body = body_of(fixture("NodeDeletedEvent"))
    headers = {"Authorization": f"Bearer {signer.SECRET}"}
    first, again = await send(client, src, body, headers), await send(client, src, body, headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["duplicate"] is True


def test_the_dedup_key_is_the_body_hash_within_a_minute() -> None:
    fx = fixture("NodeRenamedEvent")
    body = body_of(fx)
    req = Req(body, {"Authorization": f"Bearer {signer.SECRET}"})
    [event] = hooks_for(SPEC).split(SPEC, context(SPEC, signer.SECRET, {}), req.raw(), 0)
    assert event.dedup_key == "sha256:" + hashlib.sha256(body).hexdigest()
    assert event.dedup_window == 60


async def test_a_token_sent_in_a_custom_header_is_not_stored(client: httpx.AsyncClient) -> None:
    src = await nextcloud_source(client, {"header": "X-Hub-Token: nc-<secret>"})
    resp = await send(client, src, body_of(fixture("NodeWrittenEvent")), {"X-Hub-Token": f"nc-{signer.SECRET}"})
    assert resp.status_code == 202
    event = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert "x-hub-token" not in event["headers"]
