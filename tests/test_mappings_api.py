"""Mappings as managed, versioned resources; preview warnings; dry runs on a route's stored events;
the mapping version recorded in the lineage."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import create, fire, wait_for
from tests.helpers import github_issue, github_request

SHORT = {"events": ["issues.*"], "post": {"title": "#{{ payload.issue.number }} {{ payload.issue.title }}"}}
LONGER = {"events": ["issues.*"], "post": {"title": "Issue #{{ payload.issue.number }}: {{ payload.issue.title }}"}}


async def test_a_managed_mapping_gets_a_version_per_change_and_builtins_are_read_only(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, "/api/v1/mappings", {"name": "short", "connector": "github", "spec": SHORT})
    assert (created["version"], created["builtin"], created["warnings"]) == (1, False, [])
    v2 = await client.put("/api/v1/mappings/short", json={"spec": LONGER})
    assert v2.status_code == 200 and v2.json()["version"] == 2
    history = (await client.get("/api/v1/mappings/short/versions")).json()
    assert [h["version"] for h in history] == [2, 1]
    assert history[1]["spec"]["post"]["title"] == SHORT["post"]["title"]
    assert history[0]["created_by"]  # who wrote it
    listed = {m["name"]: m for m in (await client.get("/api/v1/mappings")).json()}
    assert listed["short"]["version"] == 2 and listed["github/issues.opened"]["builtin"] is True
    read_only = await client.put("/api/v1/mappings/github/issues.opened", json={"spec": SHORT})
    assert read_only.status_code == 409 and read_only.json()["error"]["code"] == "mapping_read_only"
    copy = await client.post("/api/v1/mappings/github/issues.opened/copy", json={"name": "my-opened"})
    assert copy.status_code == 201 and copy.json()["connector"] == "github" and copy.json()["version"] == 1
    clash = await client.post("/api/v1/mappings", json={"name": "short", "spec": SHORT})
    assert clash.status_code == 409
    shadow = await client.post("/api/v1/mappings", json={"name": "issues.opened", "spec": SHORT})
    assert shadow.status_code == 409  # a route naming "issues.opened" means the built-in one


async def test_a_mapping_that_fails_on_its_connectors_samples_is_refused(client: httpx.AsyncClient) -> None:
    empty_title = {"events": ["issues.opened"], "post": {"title": "{{ payload.nothing_here }}"}}
    resp = await client.post("/api/v1/mappings", json={"name": "broken", "connector": "github", "spec": empty_title})
    assert resp.status_code == 422
    assert "github/issues.opened" in resp.json()["error"]["message"] and "title" in resp.json()["error"]["message"]
    # a field the samples lack is accepted, with a warning naming it
    warned = {"events": ["issues.opened"], "post": {"title": "Issue #{{ payload.issue.numbr }} opened"}}
    ok = await create(client, "/api/v1/mappings", {"name": "typo", "connector": "github", "spec": warned})
    assert any("'numbr' is missing" in w for w in ok["warnings"])


async def test_preview_warns_about_fields_the_payload_lacks(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/v1/preview",
        json={
            "connector": "github",
            "event_type": "issues.opened",
            "payload": {"issue": {"title": "No number here"}, "repository": {"full_name": "o/r"}},
            "mapping": {"post": {"title": "Issue #{{ payload.issue.number }} opened: {{ payload.issue.title }}"}},
        },
    )
    assert resp.status_code == 200
    assert resp.json()["post"]["title"] == "Issue # opened: No number here"
    assert resp.json()["warnings"] == ["title: 'number' is missing from the event, it rendered empty"]


async def test_a_route_uses_a_managed_mapping_and_the_delivery_records_its_version(
    client: httpx.AsyncClient, pipeline: Any
) -> None:
    await create(client, "/api/v1/mappings", {"name": "short", "connector": "github", "spec": SHORT})
    ids = await pipeline({"kind": "inbox", "name": "i"}, ["issues.*"], "short")
    event_id = await fire(client, ids["source_id"], 7)

    async def delivered() -> bool:
        detail = (await client.get(f"/api/v1/events/{event_id}")).json()
        return bool(detail["deliveries"]) and detail["deliveries"][0]["status"] == "delivered"

    await wait_for(delivered)
    detail = (await client.get(f"/api/v1/events/{event_id}")).json()
    assert detail["deliveries"][0]["mapping_version"] == "short@1"
    await client.put("/api/v1/mappings/short", json={"spec": LONGER})
    second = await fire(client, ids["source_id"], 8)

    async def second_delivered() -> bool:
        d = (await client.get(f"/api/v1/events/{second}")).json()["deliveries"]
        return bool(d) and d[0]["status"] == "delivered"

    await wait_for(second_delivered)
    d2 = (await client.get(f"/api/v1/events/{second}")).json()["deliveries"][0]
    assert d2["mapping_version"] == "short@2"
    titles = [p["post"]["title"] for p in (await client.get("/api/v1/inbox")).json()]
    assert titles == ["Issue #8: Found a bug #8", "#7 Found a bug #7"]
    in_use = await client.delete("/api/v1/mappings/short")
    assert in_use.status_code == 409


async def test_default_mapping_deliveries_name_the_builtin(client: httpx.AsyncClient, pipeline: Any) -> None:
    ids = await pipeline({"kind": "inbox", "name": "i"}, ["issues.opened"])
    event_id = await fire(client, ids["source_id"], 3)

    async def delivered() -> bool:
        d = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"]
        return bool(d) and d[0]["status"] == "delivered"

    await wait_for(delivered)
    d = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]
    assert d["mapping_version"] == "builtin:github/issues.opened"


async def test_dry_run_shows_both_renderings_side_by_side_and_sends_nothing(
    client: httpx.AsyncClient, pipeline: Any, receiver: Any
) -> None:
    ids = await pipeline({"kind": "webhook", "name": "w", "url": receiver.url}, ["issues.*"])
    for number, action in ((1, "opened"), (2, "opened"), (3, "closed")):
        body, headers = github_request(github_issue(number, action))
        assert (await client.post(f"/hooks/{ids['source_id']}", content=body, headers=headers)).status_code == 202

    async def sent() -> bool:
        return len(receiver.requests) == 3

    await wait_for(sent)
    candidate = {
        "when": "{{ payload.action == 'opened' }}",
        "post": {"title": "New: {{ payload.issue.title }}", "link": "{{ payload.issue.html_url }}"},
    }
    resp = await client.post(f"/api/v1/routes/{ids['route_id']}/dry-run", json={"mapping": candidate, "limit": 10})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["summary"] == {"changed": 2, "now_skipped": 1}
    by_type = {(e["type"], e["change"]) for e in out["events"]}
    assert by_type == {("issues.opened", "changed"), ("issues.closed", "now_skipped")}
    changed = next(e for e in out["events"] if e["change"] == "changed")
    assert changed["current"]["post"]["title"].startswith("Issue #")
    assert changed["candidate"]["post"]["title"].startswith("New: ")
    assert "title" in changed["differs"] and "request" in changed["differs"]
    assert changed["candidate"]["request"]["body"]["post"]["title"].startswith("New: ")
    assert len(receiver.requests) == 3  # nothing was sent
    limited = await client.post(f"/api/v1/routes/{ids['route_id']}/dry-run", json={"mapping": None, "limit": 1})
    assert len(limited.json()["events"]) == 1 and limited.json()["summary"] == {"same": 1}
    too_many = await client.post(f"/api/v1/routes/{ids['route_id']}/dry-run", json={"mapping": None, "limit": 201})
    assert too_many.status_code == 422
