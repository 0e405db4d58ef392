"""The audit trail: every change and every manual retry or replay, with who, when and which fields (never a
secret), readable by admins with filters and pagination; written in the change's own transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hub import audit
from tests.conftest import create, fire, wait_for
from tests.helpers import AUTH, GITHUB_SECRET
from tests.receiver import Receiver

Pipeline = Callable[..., Awaitable[dict[str, Any]]]
TOKEN = "target-bearer-token-never-in-the-trail"
NEW_SECRET = "rotated-webhook-secret-never-in-the-trail"


async def trail(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/audit", params=params)
    assert resp.status_code == 200, resp.text
    entries: list[dict[str, Any]] = resp.json()
    return entries


def actions(entries: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """(resource, action, fields), oldest first."""
    return [(e["resource"], e["action"], e["fields"]) for e in reversed(entries)]


async def test_changes_to_sources_targets_routes_and_keys_are_recorded(client: httpx.AsyncClient) -> None:
    admin = (await client.get("/auth/me")).json()
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "acme", "secret": GITHUB_SECRET})
    await client.patch(f"/api/v1/sources/{src['id']}", json={"secret": NEW_SECRET, "name": "acme prod"})
    tgt = await create(
        client,
        "/api/v1/targets",
        {"kind": "webhook", "name": "ops", "url": "https://example.com/h", "bearer_token": TOKEN},
    )
    await client.patch(f"/api/v1/targets/{tgt['id']}", json={"bearer_token": TOKEN + "2", "enabled": False})
    rte = await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": tgt["id"], "events": ["*"]})
    await client.patch(f"/api/v1/routes/{rte['id']}", json={"events": ["issues.*"]})
    key = await create(client, "/api/v1/keys", {"name": "dashboard", "scope": "read"})
    assert (await client.delete(f"/api/v1/keys/{key['id']}")).status_code == 204
    for path in (f"/api/v1/routes/{rte['id']}", f"/api/v1/targets/{tgt['id']}", f"/api/v1/sources/{src['id']}"):
        assert (await client.delete(path)).status_code == 204
    assert (await client.delete(f"/api/v1/sources/{src['id']}")).status_code == 404  # nothing changed: no record

    entries = await trail(client)
    assert actions(entries) == [
        ("key", "create", ["name", "scope"]),  # the bootstrap admin key, made by hub itself
        ("source", "create", ["connector", "name", "secret"]),
        ("source", "update", ["name", "secret"]),
        ("target", "create", ["bearer_token", "kind", "name", "url"]),
        ("target", "update", ["bearer_token", "enabled"]),
        ("route", "create", ["events", "source_id", "target_id"]),
        ("route", "update", ["events"]),
        ("key", "create", ["name", "scope"]),
        ("key", "delete", []),
        ("route", "delete", []),
        ("target", "delete", []),
        ("source", "delete", []),
    ]
    assert entries[-1]["actor"] == {"kind": "system", "id": "system", "name": "hub"}
    ours = entries[:-1]
    assert {json.dumps(e["actor"], sort_keys=True) for e in ours} == {
        json.dumps({"kind": "api_key", "id": admin["id"], "name": "bootstrap admin"}, sort_keys=True)
    }
    assert [e["resource_id"] for e in ours if e["resource"] == "target"] == [tgt["id"]] * 3
    for e in entries:
        assert datetime.fromisoformat(e["at"]) > datetime.now(UTC) - timedelta(minutes=1)
    text = json.dumps(entries)
    for secret in (GITHUB_SECRET, NEW_SECRET, TOKEN, "example.com", key["key"]):
        assert secret not in text


async def test_retries_bulk_retries_replays_and_breaker_resets_are_recorded(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.script = [(400, {})] * 2  # a 404 would disable the target (its URL gone)
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url})
    first, second = await fire(client, ids["source_id"], 1), await fire(client, ids["source_id"], 2)

    async def both_dead() -> bool:
        return len((await client.get("/api/v1/dead-letters")).json()) == 2

    await wait_for(both_dead)
    dead = (await client.get("/api/v1/dead-letters")).json()
    one = next(d for d in dead if d["event_id"] == first)
    assert (await client.post(f"/api/v1/deliveries/{one['id']}/retry")).status_code == 202
    job = (await client.post("/api/v1/deliveries/bulk-retry", json={"target_id": ids["target_id"]})).json()
    replayed = (await client.post(f"/api/v1/events/{second}/replay")).json()
    assert (await client.post(f"/api/v1/targets/{ids['target_id']}/breaker/reset")).status_code == 200

    entries = await trail(client, before="aud_~")  # every id sorts before "~"
    ops = [(e["resource"], e["resource_id"], e["action"], e["details"]) for e in reversed(entries[:4])]
    assert ops == [
        ("delivery", one["id"], "retry", None),
        ("job", job["id"], "bulk_retry", {"target_id": ids["target_id"]}),
        ("event", second, "replay", {"deliveries": [d["id"] for d in replayed]}),
        ("target", ids["target_id"], "breaker_reset", None),
    ]


async def test_the_trail_filters_and_pages(client: httpx.AsyncClient) -> None:
    reader = await create(client, "/api/v1/keys", {"name": "reader", "scope": "read"})
    ops = await create(client, "/api/v1/keys", {"name": "ops", "scope": "admin"})
    as_ops = {"Authorization": f"Bearer {ops['key']}"}
    for n in range(5):
        await client.post("/api/v1/targets", json={"kind": "inbox", "name": f"t{n}"}, headers=as_ops)
    await create(client, "/api/v1/targets", {"kind": "inbox", "name": "mine"})

    by_ops = await trail(client, actor=ops["id"])
    assert len(by_ops) == 5 and await trail(client, actor="ops") == by_ops  # by key id or by name
    assert [e["resource"] for e in await trail(client, resource="target")] == ["target"] * 6
    page1 = await trail(client, resource="target", limit=4)
    page2 = await trail(client, resource="target", limit=4, before=page1[-1]["id"])
    assert len(page1) == 4 and len(page2) == 2
    assert {e["id"] for e in page1}.isdisjoint(e["id"] for e in page2)

    newer, older = (datetime.fromisoformat(e["at"]) for e in by_ops[2:4])
    middle = older + (newer - older) / 2
    since = await trail(client, actor="ops", since=middle.isoformat())
    until = await trail(client, actor="ops", until=middle.isoformat())
    assert (since, until) == (by_ops[:3], by_ops[3:])
    naive = middle.astimezone(UTC).replace(tzinfo=None).isoformat()  # no zone: UTC
    assert await trail(client, actor="ops", since=naive) == since

    as_reader = {"Authorization": f"Bearer {reader['key']}"}
    refused = await client.get("/api/v1/audit", headers=as_reader)
    assert refused.status_code == 403
    bad = await client.get("/api/v1/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_a_change_and_its_record_commit_together(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("the audit insert failed")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test", headers=AUTH) as c:
        monkeypatch.setattr(audit, "audit_row", broken)
        resp = await c.post("/api/v1/sources", json={"connector": "github", "name": "x", "secret": "s"})
        assert resp.status_code == 500
        monkeypatch.undo()
        assert (await c.get("/api/v1/sources")).json() == []  # the source was rolled back with its record
