"""Microsoft Graph against the stand-in: the drive's delta from a stored link (nextLink pages, then the
deltaLink), folders looked up by id (delta gives no path), and the subscription hub keeps alive: created at
consent, renewed when half its time is gone, re-created when gone, failures visible; lifecycle notifications."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.db import tables as t
from hub.runtime import Runtime
from hub.storage.fetch import run_fetches
from hub.storage.subscriptions import maintain_subscriptions
from tests.conftest import wait_for
from tests.storage.conftest import (
    GRAPH_SECRET,
    PUBLIC_URL,
    connect,
    events_of,
    fetched,
    inbox_route,
    notify_graph,
    settled,
    storage_source,
    storage_state,
)
from tests.storage.standins import StandIns, graph_item


async def _source(client: httpx.AsyncClient, standins: StandIns, **settings: Any) -> str:
    src = await storage_source(client, standins, "microsoft-graph", **settings)
    await connect(client, src["id"])
    await settled(client, src["id"])
    return str(src["id"])


async def _subscription(client: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    async def active() -> bool:
        sub = (await storage_state(client, sid))["subscription"]
        return bool(sub and sub["status"] in ("active", "failing"))

    await wait_for(active)
    return dict((await storage_state(client, sid))["subscription"])


async def test_a_notification_reads_the_delta_and_posts_each_item_with_its_folder(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    sub = await _subscription(client, sid)
    [remote] = graph.subscriptions.values()
    assert sub["id"] == remote["id"] and remote["clientState"] == GRAPH_SECRET
    assert remote["notificationUrl"] == remote["lifecycleNotificationUrl"] == f"{PUBLIC_URL}/hooks/{sid}"
    assert remote["resource"] == "/me/drive/root" and remote["changeType"] == "updated"
    await inbox_route(client, sid)
    graph.journal += [
        graph_item("f1", "Q3-forecast.xlsx", "fc-id", created="2024-07-01T09:00:00Z", modified="2024-07-01T09:00:20Z"),
        graph_item("f2", "Budget.xlsx", "sales-id", created="2024-01-01T09:00:00Z", modified="2024-07-01T09:00:00Z"),
        graph_item("f3", "old.txt", "fc-id", deleted=True),
    ]  # two answers: a nextLink, then the deltaLink
    await notify_graph(client, sid, subscription=sub["id"])
    await settled(client, sid)
    events = await fetched(client, sid)
    assert [e["type"] for e in events] == ["file.added", "file.updated", "file.deleted"]
    first = events[0]["payload"]
    assert (first["item"]["path"], first["actor"]["name"]) == ("/Sales/Forecasts/Q3-forecast.xlsx", "Marie Dupont")
    assert events[1]["payload"]["item"]["folder"] == "/Sales"
    assert graph.count("item") == 2  # each folder looked up once
    [note] = await events_of(client, sid, "updated")
    assert note["status"] == "ignored"

    async def posted() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 3

    await wait_for(posted)
    titles = {p["post"]["title"] for p in (await client.get("/api/v1/inbox")).json()}
    assert "Q3-forecast.xlsx was added to Sales/Forecasts by Marie Dupont" in titles


async def test_a_resync_request_starts_again_from_the_latest(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    graph.journal.append(graph_item("f1", "lost.xlsx", "fc-id"))
    graph.resync = True
    await notify_graph(client, sid)
    await run_fetches(runtime, sid)
    graph.resync = False
    graph.journal.append(graph_item("f2", "after.xlsx", "fc-id"))
    await notify_graph(client, sid)
    await run_fetches(runtime, sid)
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["after.xlsx"]


async def _due_soon(runtime: Runtime, sid: str, expires_in: float) -> None:
    s = t.storage_subscriptions
    async with runtime.engine.begin() as conn:
        await conn.execute(
            sa.update(s).where(s.c.source_id == sid).values(expires_at=time.time() + expires_in, next_check_at=0)
        )


async def test_a_subscription_near_its_expiry_is_renewed(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    sub = await _subscription(client, sid)
    await _due_soon(runtime, sid, 3600)
    patches = graph.count("subscriptions PATCH")
    assert await maintain_subscriptions(runtime, sid) == 1
    assert graph.count("subscriptions PATCH") == patches + 1
    renewed = (await storage_state(client, sid))["subscription"]
    assert renewed["id"] == sub["id"] and renewed["status"] == "active"
    assert renewed["expires_at"] > sub["expires_at"]
    assert await maintain_subscriptions(runtime, sid) == 0  # not due again before half its new lifetime
    metrics = (await client.get("/metrics")).text
    assert f'hub_storage_subscription_failing{{source_id="{sid}"}} 0.0' in metrics


async def test_a_subscription_gone_at_renewal_is_created_again(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    sub = await _subscription(client, sid)
    graph.subscriptions.clear()  # Graph removed it
    await _due_soon(runtime, sid, 3600)
    await maintain_subscriptions(runtime, sid)
    again = (await storage_state(client, sid))["subscription"]
    assert again["status"] == "active" and again["id"] != sub["id"]
    assert list(graph.subscriptions) == [again["id"]]


async def test_a_refused_renewal_is_visible_before_the_subscription_expires(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, caplog: pytest.LogCaptureFixture
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    sub = await _subscription(client, sid)
    await _due_soon(runtime, sid, 7200)
    graph.refuse_subscriptions = 1
    with caplog.at_level(logging.WARNING, "hub.storage"):
        await maintain_subscriptions(runtime, sid)
    state = (await client.get(f"/api/v1/sources/{sid}")).json()["storage"]["subscription"]
    assert state["status"] == "failing" and state["id"] == sub["id"]
    assert state["last_error"].startswith("renew subscription: HTTP 403 ExtensionError")
    metrics = (await client.get("/metrics")).text
    assert f'hub_storage_subscription_failing{{source_id="{sid}"}} 1.0' in metrics
    assert f'hub_storage_subscription_expiry_seconds{{source_id="{sid}"}}' in metrics
    [logged] = [r for r in caplog.records if r.getMessage() == "cannot create or renew the provider subscription"]
    assert 7000 < logged.__dict__["expires_in"] <= 7200 and logged.__dict__["retry_in"] < 7200 / 3
    # the next try, well before it expires, succeeds: the failure clears
    s = t.storage_subscriptions
    async with runtime.engine.begin() as conn:
        next_check = await conn.scalar(sa.select(s.c.next_check_at).where(s.c.source_id == sid))
        assert next_check < time.time() + 7200 / 3
        await conn.execute(sa.update(s).where(s.c.source_id == sid).values(next_check_at=0))
    await maintain_subscriptions(runtime, sid)
    assert (await storage_state(client, sid))["subscription"]["status"] == "active"


async def test_lifecycle_notifications_are_acted_on(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    sub = await _subscription(client, sid)
    patches = graph.count("subscriptions PATCH")
    await notify_graph(client, sid, "reauthorizationRequired", sub["id"])

    async def reauthorized() -> bool:
        return graph.count("subscriptions PATCH") == patches + 1

    await wait_for(reauthorized)  # a renewal reauthorizes
    graph.subscriptions.clear()
    graph.journal.append(graph_item("f1", "missed.xlsx", "fc-id"))
    await notify_graph(client, sid, "subscriptionRemoved", sub["id"])

    async def recreated() -> bool:
        state = (await storage_state(client, sid))["subscription"]
        return state["status"] == "active" and state["id"] != sub["id"] and bool(graph.subscriptions)

    await wait_for(recreated)
    await settled(client, sid)  # and what changed meanwhile is fetched
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["missed.xlsx"]
    graph.journal.append(graph_item("f2", "throttled.xlsx", "fc-id"))
    new_id = (await storage_state(client, sid))["subscription"]["id"]
    await notify_graph(client, sid, "missed", new_id)
    await settled(client, sid)
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)][-1] == "throttled.xlsx"
    lifecycle = await events_of(client, sid, "lifecycle.")
    assert [e["status"] for e in lifecycle] == ["unrouted"] * 3  # stored and routable, not ignored


async def test_client_credentials_need_no_consent(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    me = await client.post(
        "/api/v1/sources",
        json={
            "connector": "microsoft-graph",
            "name": "app",
            "secret": "s",
            "settings": {**standins.settings("microsoft-graph"), "oauth_grant": "client_credentials"},
        },
    )
    assert me.status_code == 422 and "/me" in me.json()["error"]["message"]  # no /me without a user
    src = await storage_source(
        client, standins, "microsoft-graph", oauth_grant="client_credentials", drive="/drives/b!drive"
    )
    start = await client.get(f"/api/v1/sources/{src['id']}/oauth/start")
    assert start.status_code == 409
    resp = await client.put(f"/api/v1/sources/{src['id']}/credentials", json={"grant": "client_credentials"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["credentials"]["grant"] == "client_credentials"
    asked = graph.oauth.token_requests[-1]
    assert (asked["grant_type"], asked["scope"]) == ("client_credentials", "https://graph.microsoft.com/.default")
    await settled(client, src["id"])
    await _subscription(client, src["id"])
    [remote] = graph.subscriptions.values()
    assert remote["resource"] == "/drives/b!drive/root"


async def test_turning_the_subscription_off_deletes_it(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    await _subscription(client, sid)
    settings = {**standins.settings("microsoft-graph"), "manage_subscription": False}
    assert (await client.patch(f"/api/v1/sources/{sid}", json={"settings": settings})).status_code == 200
    await maintain_subscriptions(runtime, sid)
    assert graph.subscriptions == {}
    assert (await storage_state(client, sid))["subscription"]["status"] == "deleted"
    assert (await client.delete(f"/api/v1/sources/{sid}")).status_code == 204


async def test_a_rotated_secret_makes_a_new_subscription_and_deleting_the_source_deletes_it(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    sid = await _source(client, standins)
    first = await _subscription(client, sid)
    rotated = await client.patch(f"/api/v1/sources/{sid}", json={"secret": "a-new-client-state-0123456789"})
    assert rotated.status_code == 200
    await maintain_subscriptions(runtime, sid)
    [remote] = graph.subscriptions.values()  # the old one deleted
    assert remote["id"] != first["id"] and remote["clientState"] == "a-new-client-state-0123456789"
    assert (await client.delete(f"/api/v1/sources/{sid}")).status_code == 204
    assert graph.subscriptions == {}
    s = t.storage_subscriptions
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(sa.select(s).where(s.c.source_id == sid))).first() is None
