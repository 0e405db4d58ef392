"""Microsoft Graph change notifications, as https://learn.microsoft.com/graph/change-notifications-delivery-webhooks
and https://learn.microsoft.com/graph/change-notifications-lifecycle-events describe them: the notification URL
validation (``?validationToken=``, answered 200 ``text/plain`` with the URL-decoded token, before anything else),
``clientState`` checked on every item of ``value[]``, several subscriptions in one POST, lifecycle notifications
on the same URL, and notifications that look alike for every change of a drive."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from hub.ingest import core
from tests.conformance.kit import FIXTURES, load
from tests.conftest import create, wait_for

SECRET = "secretClientValue"
# as Graph sends it: URL-encoded, ':' as %3a and spaces as '+'
ENCODED_TOKEN = (
    "Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+"
    "f9c0bd1e-2a3f-4b8c-9d7e-6a5b4c3d2e1f"
)
TOKEN = (
    "Validation: Testing client application reachability for subscription Request-Id: "
    "f9c0bd1e-2a3f-4b8c-9d7e-6a5b4c3d2e1f"
)


def body_of(name: str) -> bytes:
    return json.dumps(load(FIXTURES / "microsoft-graph" / f"{name}.json")["payload"]).encode()


async def graph_source(client: httpx.AsyncClient, events: list[str] | None = None) -> dict[str, Any]:
    src = await create(client, "/api/v1/sources", {"connector": "microsoft-graph", "name": "m365", "secret": SECRET})
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "inbox"})
    route = {"source_id": src["id"], "target_id": inbox["id"], "events": events or ["*"]}
    await create(client, "/api/v1/routes", route)
    return src


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_validation_is_answered_with_the_decoded_token_as_plain_text(
    client: httpx.AsyncClient, fast_ingest: bool, method: str
) -> None:
    """Doc, "notificationUrl validation": POST https://{notificationUrl}?validationToken={opaqueToken}
    (Content-Type: text/plain; charset=utf-8); answer 200, text/plain, the URL-decoded token ("If the client
    returns an encoded validation token, the validation fails"). No clientState, no signature: answered first."""
    src = await graph_source(client)
    url = f"/hooks/{src['id']}?validationToken={ENCODED_TOKEN}"
    resp = await client.request(method, url, headers={"Content-Type": "text/plain; charset=utf-8"})
    assert (resp.status_code, resp.text) == (200, TOKEN)
    assert resp.headers["content-type"].split(";")[0] == "text/plain"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_a_plus_sign_in_the_token_arrives_as_percent_2b(client: httpx.AsyncClient) -> None:
    src = await graph_source(client)
    resp = await client.post(f"/hooks/{src['id']}?validationToken=a%2Bb+c%26d%3D")
    assert (resp.status_code, resp.text) == (200, "a+b c&d=")


async def test_a_batch_keeps_the_items_whose_client_state_matches(client: httpx.AsyncClient) -> None:
    """Doc: "Validate the clientState property ... If there's a mismatch, don't consider the change notification
    as valid": the other subscription's item is dropped, the two valid ones are two events."""
    src = await graph_source(client)
    resp = await client.post(f"/hooks/{src['id']}", content=body_of("batch"))
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["event_ids"]) == 2
    events = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert sorted(e["type"] for e in events) == ["updated", "updated"]
    assert not any("99999999" in (e["dedup_key"] or "") for e in events)
    # the clientState is the source's secret ("should remain secret"): never in an event's payload
    details = [(await client.get(f"/api/v1/events/{e['id']}")).json() for e in events]
    assert all("clientState" not in d["payload"] and SECRET not in json.dumps(d) for d in details)

    async def two_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 2

    await wait_for(two_posts)
    titles = sorted(p["post"]["title"] for p in (await client.get("/api/v1/inbox")).json())
    assert titles == ["Files changed in OneDrive / SharePoint", "SharePoint list updated"]


@pytest.mark.parametrize(
    ("states", "code"),
    [(["someone else's"], "bad_signature"), ([None], "missing_signature"), ([], "missing_signature")],
)
async def test_no_valid_client_state_is_401(client: httpx.AsyncClient, states: list[str | None], code: str) -> None:
    src = await graph_source(client)
    item = load(FIXTURES / "microsoft-graph" / "updated.json")["payload"]["value"][0]
    stateless = {k: v for k, v in item.items() if k != "clientState"}
    items = [{**item, "clientState": s} if s is not None else stateless for s in states]
    body = json.dumps({"value": items}).encode()
    resp = await client.post(f"/hooks/{src['id']}", content=body)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, code)
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_lifecycle_notifications_arrive_on_the_same_url_as_events_of_their_own(
    client: httpx.AsyncClient,
) -> None:
    """Doc: "The lifecycleNotificationUrl endpoint can be the same as the notificationUrl"; a route for ``updated``
    does not deliver them, a route may name them (``lifecycle.*``)."""
    src = await graph_source(client, events=["updated"])
    resp = await client.post(f"/hooks/{src['id']}", content=body_of("lifecycle.reauthorizationRequired"))
    assert resp.status_code == 202, resp.text
    [event] = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert (event["type"], event["status"]) == ("lifecycle.reauthorizationRequired", "unrouted")
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "ops"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": tgt["id"], "events": ["lifecycle.*"]})


async def test_a_drive_notification_is_a_repeat_within_60_s_only(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drive subscription sends the same item for every change ("the notification doesn't include any
    information about the changes that triggered it", OneDrive "Using webhooks"); Graph retries an unanswered
    one for up to 4 hours. Same subscription, resource and change type: one event within 60 s."""
    clock = SimpleNamespace(now=1_800_000_000.0)
    monkeypatch.setattr(core, "time", SimpleNamespace(time=lambda: clock.now))
    src = await graph_source(client)
    url = f"/hooks/{src['id']}"
    first = await client.post(url, content=body_of("updated"))
    clock.now += 20
    again = await client.post(url, content=body_of("updated"))
    clock.now += 61
    later = await client.post(url, content=body_of("updated"))
    assert [first.status_code, again.status_code, later.status_code] == [202, 200, 202]
    assert len((await client.get("/api/v1/events", params={"source_id": src["id"]})).json()) == 2
