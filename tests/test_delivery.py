"""Delivery through a real local HTTP server: retries, dead letters, template failures, replay, resume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from hub.app import create_app
from hub.db import tables as t
from hub.runtime import Runtime
from tests.conftest import create_pipeline, fire, make_settings, running_app, wait_for
from tests.receiver import Receiver

Pipeline = Callable[..., Awaitable[dict[str, Any]]]


async def _event(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    data: dict[str, Any] = (await client.get(f"/api/v1/events/{event_id}")).json()
    return data


async def test_503_then_201_is_retried_and_every_attempt_recorded(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.script = [(503, {}), (201, {})]
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url, "retry_schedule": [0.2, 0.2]})
    event_id = await fire(client, ids["source_id"], 1)

    async def delivered() -> bool:
        return (await _event(client, event_id))["status"] == "delivered"

    await wait_for(delivered)
    ev = await _event(client, event_id)
    attempts = ev["deliveries"][0]["attempt_log"]
    assert [a["status_code"] for a in attempts] == [503, 201]
    assert [a["outcome"] for a in attempts] == ["pending", "delivered"]
    assert attempts[0]["error"] == "HTTP 503"
    assert len(receiver.requests) == 2
    keys = receiver.idempotency_keys()
    assert keys[0] == keys[1] == ev["deliveries"][0]["id"]  # the target can drop the repeat
    assert receiver.requests[0].body["post"]["title"] == "Issue #1 opened: Found a bug #1"


async def test_retry_after_is_honoured(client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "1"})]
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url, "retry_schedule": [0.05]})
    event_id = await fire(client, ids["source_id"], 2)

    async def delivered() -> bool:
        return (await _event(client, event_id))["status"] == "delivered"

    await wait_for(delivered)
    first, second = receiver.requests
    assert second.at - first.at >= 0.95


async def test_4xx_is_dead_at_once_and_can_be_retried(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.script = [(400, {})]
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url})
    event_id = await fire(client, ids["source_id"], 3)

    async def failed() -> bool:
        return (await _event(client, event_id))["status"] == "failed"

    await wait_for(failed)
    delivery = (await _event(client, event_id))["deliveries"][0]
    assert delivery["status"] == "dead" and delivery["last_status_code"] == 400
    dead = (await client.get("/api/v1/deliveries", params={"status": "dead"})).json()
    assert [d["id"] for d in dead] == [delivery["id"]]
    resp = await client.post(f"/api/v1/deliveries/{delivery['id']}/retry")
    assert resp.status_code == 202

    async def delivered() -> bool:
        return (await _event(client, event_id))["status"] == "delivered"

    await wait_for(delivered)
    assert len(receiver.requests) == 2
    again = await client.post(f"/api/v1/deliveries/{delivery['id']}/retry")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "delivery_not_retryable")


async def test_retries_exhausted_is_dead(client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver) -> None:
    receiver.default = 500
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url, "retry_schedule": [0.05, 0.05]})
    event_id = await fire(client, ids["source_id"], 4)

    async def failed() -> bool:
        return (await _event(client, event_id))["status"] == "failed"

    await wait_for(failed)
    d = (await _event(client, event_id))["deliveries"][0]
    assert d["attempts"] == 3 and "retries exhausted" in d["last_error"]


async def test_unreachable_target_is_retried_not_lost(client: httpx.AsyncClient, pipeline: Pipeline) -> None:
    ids = await pipeline({"kind": "webhook", "name": "down", "url": "http://127.0.0.1:9/", "retry_schedule": [60]})
    event_id = await fire(client, ids["source_id"], 5)

    async def attempted() -> bool:
        return (await _event(client, event_id))["deliveries"][0]["attempts"] == 1

    await wait_for(attempted)
    d = (await _event(client, event_id))["deliveries"][0]
    assert d["status"] == "pending" and d["next_attempt_at"] is not None
    assert "connect" in d["last_error"].lower()  # the cause names the failed connection


async def test_failing_template_fails_the_delivery_with_its_cause(
    client: httpx.AsyncClient, pipeline: Pipeline
) -> None:
    ids = await pipeline(
        {"kind": "inbox", "name": "box"}, mapping={"post": {"title": "{{ payload.issue.number / 0 }}"}}
    )
    event_id = await fire(client, ids["source_id"], 6)

    async def failed() -> bool:
        return (await _event(client, event_id))["status"] == "failed"

    await wait_for(failed)
    d = (await _event(client, event_id))["deliveries"][0]
    assert d["status"] == "failed"
    assert "mapping failed" in d["last_error"] and "ZeroDivisionError" in d["last_error"]
    assert d["attempt_log"][0]["error"] == d["last_error"]
    assert (await client.get("/healthz")).status_code == 200


async def test_default_mappings_into_inbox_one_thread_per_issue(client: httpx.AsyncClient, pipeline: Pipeline) -> None:
    ids = await pipeline({"kind": "inbox", "name": "box"}, events=["issues.*"])
    await fire(client, ids["source_id"], 10, "opened")
    await fire(client, ids["source_id"], 10, "closed")
    await fire(client, ids["source_id"], 11, "opened")

    async def three() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 3

    await wait_for(three)
    posts = [p["post"] for p in reversed((await client.get("/api/v1/inbox")).json())]
    by_thread = {p["thread_key"] for p in posts}
    assert by_thread == {"github:octocat/Hello-World#10", "github:octocat/Hello-World#11"}
    assert [p["title"] for p in posts if p["thread_key"].endswith("#10")] == [
        "Issue #10 opened: Found a bug #10",
        "Issue #10 closed: Found a bug #10",
    ]


async def test_replay_delivers_again(client: httpx.AsyncClient, pipeline: Pipeline) -> None:
    ids = await pipeline({"kind": "inbox", "name": "box"})
    event_id = await fire(client, ids["source_id"], 12)

    async def count(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len((await client.get("/api/v1/inbox")).json()) == n

        return check

    await wait_for(await count(1))
    resp = await client.post(f"/api/v1/events/{event_id}/replay")
    assert resp.status_code == 202 and len(resp.json()) == 1
    await wait_for(await count(2))
    assert len((await _event(client, event_id))["deliveries"]) == 2


async def test_unrouted_events_are_kept_and_filterable(client: httpx.AsyncClient, pipeline: Pipeline) -> None:
    ids = await pipeline({"kind": "inbox", "name": "box"}, events=["pull_request.*"])
    event_id = await fire(client, ids["source_id"], 13)
    listed = (await client.get("/api/v1/events", params={"status": "unrouted"})).json()
    assert [e["id"] for e in listed] == [event_id]
    assert (await client.get("/api/v1/events", params={"type": "push"})).json() == []


async def test_pending_deliveries_resume_after_restart(tmp_path: Path, receiver: Receiver) -> None:
    async with running_app(make_settings(tmp_path, embedded_worker=False)) as (_, c):
        ids = await create_pipeline(c, {"kind": "webhook", "name": "rx", "url": receiver.url})
        for n in range(5):
            await fire(c, ids["source_id"], n)
    assert receiver.requests == []  # no worker ran: everything is pending in the database
    app = create_app(make_settings(tmp_path))
    async with app.router.lifespan_context(app):
        rt: Runtime = app.state.runtime

        async def all_delivered() -> bool:
            async with rt.engine.connect() as conn:
                n = await conn.scalar(
                    sa.select(sa.func.count()).select_from(t.deliveries).where(t.deliveries.c.status == "delivered")
                )
            return n == 5

        await wait_for(all_delivered)
    assert len(receiver.requests) == 5


async def test_embedded_worker_on_postgres_without_redis(tmp_path: Path, pg_database: str) -> None:
    settings = make_settings(tmp_path, database_url=pg_database)
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        rt: Runtime = first.state.runtime
        async with rt.engine.begin() as conn:  # a send in flight in another process on the same database
            await conn.execute(
                t.deliveries.insert().values(
                    id="dlv_other",
                    event_id="evt_other",
                    route_id="rte_other",
                    target_id="tgt_other",
                    order_key="k",
                    status="sending",
                    attempts=0,
                    next_attempt_at=0,
                    lease_until=9e9,
                    created_at=0,
                    updated_at=0,
                )
            )
    async with running_app(settings) as (app, c):  # starting again must not take over the other process's send
        ids = await create_pipeline(c, {"kind": "inbox", "name": "box"})
        await fire(c, ids["source_id"], 1)

        async def delivered() -> bool:
            return len((await c.get("/api/v1/inbox")).json()) == 1

        await wait_for(delivered)
        rt2: Runtime = app.state.runtime
        async with rt2.engine.connect() as conn:
            other = (await conn.execute(sa.select(t.deliveries).where(t.deliveries.c.id == "dlv_other"))).one()
        assert (other.status, other.lease_until) == ("sending", 9e9)  # untouched: its lease still runs
