"""GitLab as it documents its webhooks, beyond the generic suite.

https://docs.gitlab.com/user/project/integrations/webhooks/ — the secret token in X-Gitlab-Token; "Delivery
headers": Idempotency-Key (17.4+, the same across retries and "Resend Request"), X-Gitlab-Event-UUID, X-Gitlab-Event.
https://docs.gitlab.com/user/project/integrations/webhook_events/ — object_kind, object_attributes.action, a
release's top-level action, push without an action, group events named by event_name.
https://docs.gitlab.com/administration/system_hooks/ — system hooks send the same push and merge request bodies
with X-Gitlab-Event: System Hook.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hub.mapping.catalogue import builtin_mappings
from hub.mapping.context import mapping_context
from hub.mapping.render import applies
from tests.conformance.kit import CATALOGUE, FIXTURES, body_of, load
from tests.conformance.signers import gitlab as signer
from tests.conftest import create

SPEC = CATALOGUE.get("gitlab")
assert SPEC is not None


async def gitlab_source(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "/api/v1/sources", {"connector": "gitlab", "name": "gitlab", "secret": signer.SECRET})


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(url, content=body, headers=headers)


def fixture(name: str) -> dict[str, Any]:
    return load(FIXTURES / "gitlab" / f"{name}.json")


def signed_headers(fx: dict[str, Any], **changes: str) -> dict[str, str]:
    return {**fx["headers"], "X-Gitlab-Token": signer.SECRET, **changes}


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        (signer.WRONG_SECRET, "bad_signature"),
        (f"Bearer {signer.SECRET}", "bad_signature"),  # GitLab sends the token as it is, nothing around it
        (signer.SECRET + " ", "bad_signature"),
    ],
)
async def test_the_token_must_equal_the_secret(client: httpx.AsyncClient, token: str | None, code: str) -> None:
    src = await gitlab_source(client)
    fx = fixture("push")
    headers = dict(fx["headers"]) if token is None else {**fx["headers"], "X-Gitlab-Token": token}
    resp = await post(client, src["ingest_url"], body_of(fx), headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, code)


async def test_the_token_is_never_stored_with_the_event(client: httpx.AsyncClient) -> None:
    src = await gitlab_source(client)
    fx = fixture("issue.open")
    resp = await post(client, src["ingest_url"], body_of(fx), signed_headers(fx))
    assert resp.status_code == 202, resp.text
    event = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert "x-gitlab-token" not in event["headers"]
    assert signer.SECRET not in json.dumps(event)
    assert event["headers"]["x-gitlab-event"] == "Issue Hook"


async def test_a_resent_request_keeps_its_idempotency_key_and_is_a_duplicate(client: httpx.AsyncClient) -> None:
    """GitLab's "Resend Request" sends the same Idempotency-Key; the event UUID may differ."""
    src = await gitlab_source(client)
    fx = fixture("merge_request.merge")
    first = await post(client, src["ingest_url"], body_of(fx), signed_headers(fx))
    again = await post(
        client, src["ingest_url"], body_of(fx), signed_headers(fx, **{"X-Gitlab-Event-UUID": "another-uuid"})
    )
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}


async def test_without_an_idempotency_key_the_event_uuid_is_the_delivery_id(client: httpx.AsyncClient) -> None:
    """GitLab before 17.4 sends no Idempotency-Key."""
    src = await gitlab_source(client)
    fx = fixture("issue.reopen")
    assert "Idempotency-Key" not in fx["headers"]
    first = await post(client, src["ingest_url"], body_of(fx), signed_headers(fx))
    event = (await client.get(f"/api/v1/events/{first.json()['event_id']}")).json()
    assert event["dedup_key"] == fx["headers"]["X-Gitlab-Event-UUID"]


async def test_x_gitlab_event_is_not_required_the_body_says_what_happened(client: httpx.AsyncClient) -> None:
    """Decision: the type comes from object_kind as documented; a push without X-Gitlab-Event, or relayed by a
    system hook (X-Gitlab-Event: System Hook), is still a push."""
    src = await gitlab_source(client)
    fx = fixture("push")
    without = {k: v for k, v in signed_headers(fx).items() if k != "X-Gitlab-Event"}
    first = await post(client, src["ingest_url"], body_of(fx), {**without, "Idempotency-Key": "k-1"})
    system = await post(client, src["ingest_url"], body_of(fx), {**without, "X-Gitlab-Event": "System Hook"})
    for resp in (first, system):
        assert resp.status_code == 202, resp.text
        assert (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()["type"] == "push"


async def test_a_body_that_names_no_event_is_refused(client: httpx.AsyncClient) -> None:
    src = await gitlab_source(client)
    resp = await post(client, src["ingest_url"], b'{"project": {"id": 1}}', {"X-Gitlab-Token": signer.SECRET})
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "missing_event_type")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"object_kind": "release", "action": "update", "tag": "v1.1"}, "release.update"),  # top-level action
        ({"object_kind": "milestone", "object_attributes": {"iid": 10}, "action": "close"}, "milestone.close"),
        ({"object_kind": "note", "object_attributes": {"note": "an older GitLab, no action"}}, "note"),
        ({"object_kind": "build", "build_status": "created"}, "build"),
        # a group webhook's member event (docs: "An access request is denied"): no object_kind, an event_name
        (
            {"group_name": "webhook-test", "event_name": "user_access_request_denied_for_group"},
            "user_access_request_denied_for_group",
        ),
    ],
)
async def test_the_type_follows_the_documented_shapes(client: httpx.AsyncClient, body: Any, expected: str) -> None:
    src = await gitlab_source(client)
    resp = await post(client, src["ingest_url"], json.dumps(body).encode(), {"X-Gitlab-Token": signer.SECRET})
    assert resp.status_code == 202, resp.text
    assert (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()["type"] == expected


def test_an_edited_comment_is_not_posted_again() -> None:
    """object_attributes.action is "update" when a comment is edited (GitLab 16.11+)."""
    payload = fixture("note.create.issue")["payload"]
    edited = {**payload, "object_attributes": {**payload["object_attributes"], "action": "update"}}
    mappings = builtin_mappings()
    mapping = mappings.resolve("gitlab", "note.update", None)
    assert mapping is mappings.resolve("gitlab", "note.create", None)  # mappings/gitlab/note.yaml, for every note

    def ctx(p: Any, event_type: str) -> dict[str, Any]:
        return mapping_context(
            payload=p,
            spec=SPEC,
            event_id="evt_1",
            event_type=event_type,
            source_id="src_1",
            connector="gitlab",
            subject=None,
            received_at=0.0,
            source_name="GitLab",
        )

    assert applies(mapping, ctx(payload, "note.create"))
    assert not applies(mapping, ctx(edited, "note.update"))
