"""Trello as Atlassian documents its webhooks, beyond the generic suite, through the app.

https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/ — "Creating a Webhook": a HEAD request to
the callbackURL must answer 200 or the webhook is not created; you may add your own parameters to the
callbackURL; "Webhook Signatures": X-Trello-Webhook = base64 HMAC-SHA1 over the body followed by the
callbackURL "exactly as it was provided during webhook creation" — for hub, the source's ingest_url, built
from HUB_PUBLIC_URL when set (behind a proxy the Host is not what Trello was given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conformance.kit import FIXTURES, body_of, load
from tests.conformance.signers import trello as signer
from tests.conftest import create, make_settings, running_app


async def trello_source(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "/api/v1/sources", {"connector": "trello", "name": "board", "secret": signer.SECRET})


def fixture(name: str = "updateCard.moved") -> dict[str, Any]:
    return load(FIXTURES / "trello" / f"{name}.json")


async def test_the_head_check_at_webhook_creation_is_answered_200(client: httpx.AsyncClient) -> None:
    src = await trello_source(client)
    resp = await client.head(src["ingest_url"])
    assert (resp.status_code, resp.content) == (200, b"")
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_the_signed_url_is_the_public_ingest_url_not_the_host_behind_a_proxy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_url="https://hub.example.com/")
    async with running_app(settings) as (_, client):
        src = await trello_source(client)
        assert src["ingest_url"] == f"https://hub.example.com/hooks/{src['id']}"
        body = body_of(fixture())
        path = f"/hooks/{src['id']}"  # the proxy forwards it to hub.test
        good = await client.post(
            path, content=body, headers={"X-Trello-Webhook": signer.signature(body, src["ingest_url"], signer.SECRET)}
        )
        assert good.status_code == 202, good.text
        as_forwarded = signer.signature(body, f"http://hub.test{path}", signer.SECRET)
        bad = await client.post(
            path, content=body_of(fixture("commentCard")), headers={"X-Trello-Webhook": as_forwarded}
        )
        assert (bad.status_code, bad.json()["error"]["code"]) == (401, "bad_signature")


async def test_a_callback_url_with_parameters_of_its_own_is_signed_with_them(client: httpx.AsyncClient) -> None:
    """The doc suggests e.g. ?memberID=14&mainModel=true: Trello signs the URL as registered, query included."""
    src = await trello_source(client)
    callback = src["ingest_url"] + "?memberID=14&mainModel=true"
    body = body_of(fixture())
    resp = await client.post(
        callback, content=body, headers={"X-Trello-Webhook": signer.signature(body, callback, signer.SECRET)}
    )
    assert resp.status_code == 202, resp.text
    without_query = signer.signature(body, src["ingest_url"], signer.SECRET)
    refused = await client.post(callback, content=body, headers={"X-Trello-Webhook": without_query})
    assert refused.status_code == 401


async def test_an_action_sent_twice_is_stored_once(client: httpx.AsyncClient) -> None:
    """Trello retries a failed delivery (up to 3 times); every try carries the same action.id."""
    src = await trello_source(client)
    body = body_of(fixture("createCard"))
    headers = {"X-Trello-Webhook": signer.signature(body, src["ingest_url"], signer.SECRET)}
    first = await client.post(src["ingest_url"], content=body, headers=headers)
    again = await client.post(src["ingest_url"], content=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    event = (await client.get(f"/api/v1/events/{first.json()['event_id']}")).json()
    assert (event["type"], event["dedup_key"], event["subject"]) == (
        "createCard",
        "51f93e3ccd6e040f3c001b0d",
        "51a79e72dbb7e23c7c003778",
    )


async def test_the_signature_covers_the_body_and_the_url_only(client: httpx.AsyncClient) -> None:
    """Signed with another app's secret, or over the body alone: refused."""
    src = await trello_source(client)
    body = body_of(fixture())
    for header in (
        signer.signature(body, src["ingest_url"], signer.WRONG_SECRET),
        signer.signature(body, "", signer.SECRET),
    ):
        resp = await client.post(src["ingest_url"], content=body, headers={"X-Trello-Webhook": header})
        assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")
