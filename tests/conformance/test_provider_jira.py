"""Jira Cloud as Atlassian documents it, beyond the generic suite.

https://developer.atlassian.com/cloud/jira/platform/webhooks/ — "Secure admin webhooks" (X-Hub-Signature,
method=signature as defined by WebSub, its published example), "Retry policy" (X-Atlassian-Webhook-Identifier
"is the same across retries", X-Atlassian-Webhook-Retry carries the retry count).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hub.connectors.verify import VerificationError
from tests.conformance.kit import CATALOGUE, FIXTURES, Req, body_of, load, verify
from tests.conformance.signers import jira as signer
from tests.conftest import create

SPEC = CATALOGUE.get("jira")
assert SPEC is not None


def test_the_documented_example_signature_is_reproduced_and_verified() -> None:
    """The doc's example: secret "It's a Secret to Everybody", payload "Hello World!", sha256."""
    req = signer.sign(Req(b"Hello World!"), "It's a Secret to Everybody", {}, 0)
    assert req.headers["X-Hub-Signature"] == "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"
    verify(SPEC, req, "It's a Secret to Everybody", {})


@pytest.mark.parametrize(
    "header",
    [
        "a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9",  # the digest without its method
        "sha1=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9",  # another method
        "sha256=",
    ],
)
def test_only_the_sha256_method_jira_uses_today_is_accepted(header: str) -> None:
    """The doc warns Jira "might start using another method": until the connector says so, it is refused."""
    with pytest.raises(VerificationError) as info:
        verify(SPEC, Req(b"Hello World!", {"X-Hub-Signature": header}), "It's a Secret to Everybody", {})
    assert info.value.code == "bad_signature"


async def jira_source(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "/api/v1/sources", {"connector": "jira", "name": "jira", "secret": signer.SECRET})


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    req = signer.sign(Req(body, headers, "POST", url), signer.SECRET, {}, 0)
    return await client.post(url, content=req.body, headers=req.headers)


async def test_a_retry_keeps_its_identifier_and_is_not_stored_twice(client: httpx.AsyncClient) -> None:
    src = await jira_source(client)
    fixture = load(FIXTURES / "jira" / "jira_issue_updated.status.json")
    first = await post(client, src["ingest_url"], body_of(fixture), fixture["headers"])
    assert first.status_code == 202, first.text
    retry = await post(
        client, src["ingest_url"], body_of(fixture), {**fixture["headers"], "X-Atlassian-Webhook-Retry": "1"}
    )
    assert (retry.status_code, retry.json()) == (200, {"event_id": first.json()["event_id"], "duplicate": True})
    event = (await client.get(f"/api/v1/events/{first.json()['event_id']}")).json()
    assert (event["type"], event["subject"]) == ("jira:issue_updated", "JRA-20002")
    assert "x-hub-signature" in event["headers"]  # a signature is no secret: kept for the record


async def test_a_delivery_without_webhookevent_is_refused_not_stored_as_event(client: httpx.AsyncClient) -> None:
    src = await jira_source(client)
    body = json.dumps({"timestamp": 1606480436302, "issue": {"key": "JRA-1"}}).encode()
    resp = await post(client, src["ingest_url"], body, {"X-Atlassian-Webhook-Identifier": "id-1"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "missing_event_type")
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_a_delivery_for_a_jira_without_a_secret_is_refused(client: httpx.AsyncClient) -> None:
    """Webhooks registered without a secret (or by Connect / OAuth apps) carry no X-Hub-Signature."""
    src = await jira_source(client)
    fixture = load(FIXTURES / "jira" / "jira_issue_created.json")
    resp = await client.post(src["ingest_url"], content=body_of(fixture), headers=fixture["headers"])
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "missing_signature")
