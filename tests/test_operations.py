"""Dead letters, bulk retry jobs, rate limits and the retry schedule (embedded default)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from hub.delivery.ratelimit import LocalRateLimiter
from hub.delivery.schedule import DEFAULT_SCHEDULE, horizon, next_delay
from tests.conftest import fire, wait_for
from tests.receiver import Receiver

Pipeline = Callable[..., Awaitable[dict[str, Any]]]


def test_default_schedule_spans_more_than_three_days() -> None:
    assert DEFAULT_SCHEDULE[:7] == (5, 300, 1800, 7200, 18000, 36000, 36000)  # Svix's, then longer
    assert horizon() >= 3 * 24 * 3600


def test_next_delay_has_jitter_honours_retry_after_and_ends() -> None:
    rng = random.Random(7)
    delays = [next_delay(2, None, rng) for _ in range(200)]
    assert all(d is not None and 270 <= d <= 330 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 100  # really jittered
    assert next_delay(1, [1.0], rng, retry_after=30) == 30
    assert next_delay(2, [1.0], rng) is None
    assert next_delay(len(DEFAULT_SCHEDULE) + 1, None, rng) is None


async def test_local_rate_limiter() -> None:
    limiter = LocalRateLimiter()
    waits = [await limiter.wait_time("t", 2.0) for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert 0 < waits[2] <= 0.5 and 0 < waits[3] <= 0.5


async def test_target_rate_limit_spreads_deliveries(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url, "rate_limit_per_second": 5})
    for n in range(10):
        await fire(client, ids["source_id"], n)

    async def ten() -> bool:
        return len(receiver.requests) == 10

    await wait_for(ten)
    span = receiver.requests[-1].at - receiver.requests[0].at
    assert span >= 0.9  # 10 sends at 5/s with a burst of 5: at least a second

    async def recorded() -> bool:  # the receiver has the last one a moment before its attempt row is written
        return all(e["status"] == "delivered" for e in (await client.get("/api/v1/events")).json())

    await wait_for(recorded)
    for e in (await client.get("/api/v1/events")).json():
        detail = (await client.get(f"/api/v1/events/{e['id']}")).json()
        assert [a["number"] for a in detail["deliveries"][0]["attempt_log"]] == [1]  # deferrals are no attempts


async def test_dead_letters_bulk_retry_is_a_tracked_job(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.script = [(400, {})] * 6  # a client error: dead (a 404 of a webhook URL disables the target)
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url})
    for n in range(6):
        await fire(client, ids["source_id"], n)

    async def all_dead() -> bool:
        return len((await client.get("/api/v1/dead-letters")).json()) == 6

    await wait_for(all_dead)
    listed = (await client.get("/api/v1/dead-letters", params={"error_contains": "http 400"})).json()  # any case
    assert len(listed) == 6
    assert (await client.get("/api/v1/dead-letters", params={"target_id": "tgt_other"})).json() == []
    resp = await client.post(
        "/api/v1/deliveries/bulk-retry", json={"source_id": ids["source_id"], "error_contains": "HTTP 400"}
    )
    assert resp.status_code == 202
    job = resp.json()
    assert job["total"] == 6 and job["kind"] == "bulk_retry"

    async def finished() -> bool:
        return (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "done"

    await wait_for(finished)
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["done"] == 6

    async def resent() -> bool:
        return len(receiver.requests) == 12 and (await client.get("/api/v1/dead-letters")).json() == []

    await wait_for(resent)
    assert [j["id"] for j in (await client.get("/api/v1/jobs")).json()] == [job["id"]]


async def test_bulk_retry_needs_admin(client: httpx.AsyncClient) -> None:
    key = (await client.post("/api/v1/keys", json={"name": "r", "scope": "read"})).json()["key"]
    resp = await client.post("/api/v1/deliveries/bulk-retry", json={}, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 403


async def test_410_gone_disables_the_target_and_a_reset_delivers_what_waited(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.script = [(410, {})]
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url})
    first = await fire(client, ids["source_id"], 1)
    breaker = f"/api/v1/targets/{ids['target_id']}/breaker"

    async def disabled() -> bool:
        return (await client.get(breaker)).json()["state"] == "disabled"

    await wait_for(disabled)
    later = [await fire(client, ids["source_id"], n) for n in (2, 3)]
    detail = (await client.get(f"/api/v1/events/{first}")).json()
    delivery = detail["deliveries"][0]
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 410  # kept, not dead
    assert "disabled" in delivery["last_error"]
    assert (await client.get("/api/v1/dead-letters")).json() == []
    await asyncio.sleep(0.6)  # three worker polls: the waiting deliveries stay put
    assert len(receiver.requests) == 1

    assert (await client.post(f"{breaker}/reset")).status_code == 200

    async def all_delivered() -> bool:
        return {r.body["post"]["event_id"] for r in receiver.requests[1:]} == {first, *later}

    await wait_for(all_delivered)
    assert (await client.get(breaker)).json()["state"] == "closed"
