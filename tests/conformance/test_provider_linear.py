"""Linear as it documents its webhooks, beyond the generic suite, through the app (hub's own clock).

https://linear.app/developers/webhooks — "Securing webhooks": Linear-Signature, a hex HMAC-SHA256 of the raw
body; webhookTimestamp (ms) in the body, to be compared with the receiver's clock (one minute in Linear's SDK,
linear/linear packages/sdk/src/webhooks/client.ts). hub is stricter than the SDK, as the connector catalogue
asks: a missing webhookTimestamp is refused (the SDK skips the check) and so is one more than 5 s ahead of hub's
clock (the SDK allows a minute either way). Linear-Delivery identifies a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx
import pytest

from tests.conformance.kit import FIXTURES, Req, body_of, load
from tests.conformance.signers import linear as signer
from tests.conftest import create


def test_a_third_party_vector_for_the_same_hmac() -> None:
    """Linear publishes no vector; this one (secret "shop-secret", body {"id":1}) is from a third party and was
    recomputed independently (providers.md §8)."""
    expected = "a655bc546aaad270cc204843a9a34d5bdf5ab1d502cbb108a8b655710c2d019d"
    assert signer.signature(b'{"id":1}', "shop-secret") == expected
    assert hmac.new(b"shop-secret", b'{"id":1}', hashlib.sha256).hexdigest() == expected


async def linear_source(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "/api/v1/sources", {"connector": "linear", "name": "linear", "secret": signer.SECRET})


def fixture(name: str = "Issue.create") -> dict[str, Any]:
    return load(FIXTURES / "linear" / f"{name}.json")


async def send(client: httpx.AsyncClient, src: dict[str, Any], body: bytes, headers: dict[str, str]) -> httpx.Response:
    """A body exactly as given, signed as Linear signs it (no re-stamping)."""
    signed = {**headers, "Linear-Signature": signer.signature(body, signer.SECRET)}
    return await client.post(src["ingest_url"], content=body, headers=signed)


def at(offset_seconds: float) -> bytes:
    """The fixture's body with webhookTimestamp ``offset_seconds`` away from now."""
    return signer.stamp(body_of(fixture()), time.time() + offset_seconds)


@pytest.mark.parametrize("offset", [0, -30, -55, 3])
async def test_a_fresh_delivery_is_accepted(client: httpx.AsyncClient, offset: float) -> None:
    src = await linear_source(client)
    resp = await send(client, src, at(offset), fixture()["headers"])
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize(
    ("offset", "why"),
    [(-61, "a replay: signed more than a minute ago"), (-3600, "an hour old"), (30, "30 s ahead"), (86400, "tomorrow")],
)
async def test_a_delivery_outside_the_window_is_refused(client: httpx.AsyncClient, offset: float, why: str) -> None:
    src = await linear_source(client)
    resp = await send(client, src, at(offset), fixture()["headers"])
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "stale_timestamp"), why


@pytest.mark.parametrize(
    ("timestamp", "code"),
    [(None, "missing_signature"), ('"yesterday"', "bad_timestamp"), ("true", "bad_timestamp")],
)
async def test_a_missing_or_unreadable_timestamp_is_refused(
    client: httpx.AsyncClient, timestamp: str | None, code: str
) -> None:
    src = await linear_source(client)
    body = body_of(fixture())
    if timestamp is None:
        body = re.sub(rb',"webhookTimestamp":\d+', b"", body)
        assert b"webhookTimestamp" not in body
    else:
        body = re.sub(rb'("webhookTimestamp":)\d+', rb"\g<1>" + timestamp.encode(), body)
    resp = await send(client, src, body, fixture()["headers"])
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, code)


async def test_a_tampered_timestamp_breaks_the_signature(client: httpx.AsyncClient) -> None:
    """The timestamp is inside the signed body: moving it forward to replay an old delivery is bad_signature."""
    src = await linear_source(client)
    old = at(-3600)
    signed_old = signer.signature(old, signer.SECRET)
    refreshed = signer.stamp(old, time.time())
    headers = {**fixture()["headers"], "Linear-Signature": signed_old}
    resp = await client.post(src["ingest_url"], content=refreshed, headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")


async def test_a_redelivery_with_the_same_linear_delivery_is_not_stored_twice(client: httpx.AsyncClient) -> None:
    """A retry is signed again with a new webhookTimestamp: a different body, the same Linear-Delivery."""
    src = await linear_source(client)
    fx = fixture("Comment.create")
    first = signer.sign(Req(body_of(fx), fx["headers"], "POST", src["ingest_url"]), signer.SECRET, {}, time.time() - 5)
    retry = signer.sign(Req(body_of(fx), fx["headers"], "POST", src["ingest_url"]), signer.SECRET, {}, time.time())
    assert first.body != retry.body
    one = await client.post(src["ingest_url"], content=first.body, headers=first.headers)
    two = await client.post(src["ingest_url"], content=retry.body, headers=retry.headers)
    assert (one.status_code, two.status_code) == (202, 200)
    event = (await client.get(f"/api/v1/events/{one.json()['event_id']}")).json()
    assert (event["type"], event["subject"], event["dedup_key"]) == (
        "Comment.create",
        "ENG-42",
        fx["headers"]["Linear-Delivery"],
    )


async def test_a_body_that_names_no_type_is_refused(client: httpx.AsyncClient) -> None:
    src = await linear_source(client)
    body = json.dumps({"action": "create", "data": {}, "webhookTimestamp": int(time.time() * 1000)}).encode()
    resp = await send(client, src, body, {"Linear-Delivery": "d-1"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "missing_event_type")
