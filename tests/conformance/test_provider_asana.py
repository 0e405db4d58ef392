"""Asana webhooks as https://developers.asana.com/docs/webhooks-guide describes them: the ``X-Hook-Secret``
handshake ("echo back the same header with the same value and a 200 OK or 204 No Content"; "This is the only
time it will be transmitted"), ``X-Hook-Signature`` over the body with that secret, batches of compact events,
and heartbeats ("an empty payload ... at the initial handshake, and then at every eight hours")."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.parse import ParseError
from hub.connectors.verify import RawRequest
from tests.conformance.kit import FIXTURES, load
from tests.conftest import create, wait_for

SPEC = builtin_catalogue().get("asana")
assert SPEC is not None
HOOKS = hooks_for(SPEC)
SECRET = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"  # the doc's example X-Hook-Secret
HEARTBEAT = b'{"events":[]}'


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def batch() -> bytes:
    return json.dumps(load(FIXTURES / "asana" / "batch.json")["payload"]).encode()


async def asana_source(client: httpx.AsyncClient) -> dict[str, Any]:
    src = await create(client, "/api/v1/sources", {"connector": "asana", "name": "asana"})  # no secret: learned
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "inbox"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["*"]})
    return src


async def test_the_handshake_echoes_the_secret_learns_it_once_and_clearing_re_arms_it(
    client: httpx.AsyncClient, fast_ingest: bool
) -> None:
    src = await asana_source(client)
    assert src["has_secret"] is False
    url = f"/hooks/{src['id']}"
    first = await client.post(url, headers={"X-Hook-Secret": SECRET})
    assert (first.status_code, first.headers["x-hook-secret"], first.content) == (200, SECRET, b"")
    assert (await client.get(f"/api/v1/sources/{src['id']}")).json()["has_secret"] is True
    # a second handshake (another webhook, or someone else) cannot replace the secret
    second = await client.post(url, headers={"X-Hook-Secret": "attacker-secret"})
    assert (second.status_code, second.json()["error"]["code"]) == (409, "secret_already_set")
    assert "x-hook-secret" not in second.headers
    # the learned secret verifies deliveries; the attacker's does not
    assert (await client.post(url, content=HEARTBEAT, headers=signed(HEARTBEAT))).status_code == 200
    wrong = await client.post(url, content=HEARTBEAT, headers=signed(HEARTBEAT, "attacker-secret"))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "bad_signature")
    # re-creating the webhook: an admin clears the secret, the next handshake is learned
    await client.patch(f"/api/v1/sources/{src['id']}", json={"secret": None})
    again = await client.post(url, headers={"X-Hook-Secret": "new-webhook-secret"})
    assert (again.status_code, again.headers["x-hook-secret"]) == (200, "new-webhook-secret")


async def test_before_the_handshake_a_delivery_is_refused(client: httpx.AsyncClient) -> None:
    src = await asana_source(client)
    resp = await client.post(f"/hooks/{src['id']}", content=batch(), headers=signed(batch()))
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")


async def test_a_heartbeat_is_stored_as_one_ignored_event_and_never_delivered(client: httpx.AsyncClient) -> None:
    """Heartbeats keep ``last_success_at`` moving: answered 2xx. Stored (the events list shows the webhook is
    alive and its secret verifies), never routed, even by a ``*`` route. "A delivery succeeds when your webhook
    server responds ... with a 200 OK or 204 No Content": 200, never 202."""
    src = await asana_source(client)
    await client.post(f"/hooks/{src['id']}", headers={"X-Hook-Secret": SECRET})
    resp = await client.post(f"/hooks/{src['id']}", content=HEARTBEAT, headers=signed(HEARTBEAT))
    assert resp.status_code == 200, resp.text
    [event] = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert (event["type"], event["status"], event["subject"]) == ("heartbeat", "ignored", None)
    assert (await client.get("/api/v1/inbox")).json() == []


async def test_a_batch_is_one_event_per_item_all_in_the_task_thread(client: httpx.AsyncClient) -> None:
    """ "a webhook payload is designed to be able to transmit multiple events at once"; a comment and a
    "marked complete" story are on the task (their parent): same thread as the task's own change."""
    src = await asana_source(client)
    await client.post(f"/hooks/{src['id']}", headers={"X-Hook-Secret": SECRET})
    body = batch()
    resp = await client.post(f"/hooks/{src['id']}", content=body, headers=signed(body))
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["event_ids"]) == 3

    async def three_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 3

    await wait_for(three_posts)
    posts = [p["post"] for p in (await client.get("/api/v1/inbox")).json()]
    assert {p["thread_key"] for p in posts} == {"asana:task:1203495052574001"}
    assert sorted(p["title"] for p in posts) == ["New comment on a task", "Task assigned", "Task completed"]
    # Asana sends no delivery id: the same batch again is stored again (no dedup key to recognise it)
    assert (await client.post(f"/hooks/{src['id']}", content=body, headers=signed(body))).status_code == 200
    events = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert len(events) == 6 and all(e["dedup_key"] is None for e in events)


@pytest.mark.parametrize("body", [b"[]", b'{"events": {}}', b'{"events": [1, "x"]}', b"not json"])
def test_a_body_without_an_events_list_is_a_400(body: bytes) -> None:
    req = RawRequest(body=body, headers={})
    with pytest.raises(ParseError):
        HOOKS.split(SPEC, SourceContext("src_1", SECRET), req, 0.0)


def test_a_handshake_header_on_a_get_or_empty_is_no_handshake() -> None:
    ctx = SourceContext("src_1", None)
    assert HOOKS.handshake(SPEC, ctx, RawRequest(b"", {"x-hook-secret": "s"}, method="GET")) is None
    assert HOOKS.handshake(SPEC, ctx, RawRequest(b"", {"x-hook-secret": " "})) is None
    found = HOOKS.handshake(SPEC, ctx, RawRequest(b"", {"x-hook-secret": "s"}))
    assert found is not None and found.learn_secret == "s"
