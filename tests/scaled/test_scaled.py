"""Scaled mode on the real Postgres and Redis: exclusive claims, ordering, drain jobs, sweeper, flow control."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from arq.worker import Worker

from hub.config import Settings
from hub.db import tables as t
from hub.delivery.claim import claim_due
from hub.delivery.ratelimit import RedisRateLimiter
from hub.ids import new_id
from hub.runtime import Runtime
from hub.scaled.worker import _drain, batch_size
from tests.conftest import create, fire, wait_for
from tests.helpers import GITHUB_SECRET, github_issue, github_request
from tests.pg import PG_DSN
from tests.receiver import Receiver


async def _insert_deliveries(rt: Runtime, n: int, order_key: Callable[[int], str]) -> list[str]:
    now = time.time()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("dlv"),
            "event_id": "evt_x",
            "route_id": "rte_x",
            "target_id": "tgt_x",
            "order_key": order_key(i),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now - 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    async with rt.engine.begin() as conn:
        await conn.execute(t.deliveries.insert(), rows)
    return [str(r["id"]) for r in rows]


@pytest.mark.parametrize("autocommit", [False, True], ids=["in_a_transaction", "autocommit"])
async def test_concurrent_claims_never_share_a_delivery(runtime: Runtime, autocommit: bool) -> None:
    """Workers claim with ``Runtime.autocommit`` (no BEGIN/COMMIT round trips): each statement alone is atomic."""
    ids = await _insert_deliveries(runtime, 300, lambda i: f"k{i}")
    claimed: list[list[str]] = [[] for _ in range(6)]
    engine = runtime.autocommit if autocommit else runtime.engine

    async def claimer(i: int) -> None:
        while True:
            now = time.time()
            got = await claim_due(engine, 7, now + 60, now)
            if not got:
                return
            claimed[i].extend(got)

    await asyncio.gather(*(claimer(i) for i in range(6)))
    flat = [d for c in claimed for d in c]
    assert sorted(flat) == sorted(ids)
    assert len(flat) == len(set(flat))
    assert sum(1 for c in claimed if c) > 1  # the claimers really ran side by side


async def test_only_the_oldest_unfinished_delivery_of_a_thread_is_claimable(runtime: Runtime) -> None:
    ids = await _insert_deliveries(runtime, 6, lambda i: f"thread{i % 2}")
    now = time.time()
    first = await claim_due(runtime.engine, 10, now + 60, now)
    assert sorted(first) == sorted(ids[:2])
    assert await claim_due(runtime.engine, 10, now + 60, now) == []
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.update(t.deliveries).where(t.deliveries.c.id == ids[0]).values(status="delivered"))
    assert await claim_due(runtime.engine, 10, now + 60, now) == [ids[2]]


async def test_an_expired_lease_is_claimed_again(runtime: Runtime) -> None:
    (only,) = await _insert_deliveries(runtime, 1, lambda i: "k")
    now = time.time()
    assert await claim_due(runtime.engine, 5, now + 1, now) == [only]
    assert await claim_due(runtime.engine, 5, now + 1, now + 0.5) == []  # a live lease is respected
    assert await claim_due(runtime.engine, 5, now + 10, now + 2) == [only]  # its worker died


async def _pipeline(c: httpx.AsyncClient, target: dict[str, Any]) -> str:
    src = await create(c, "/api/v1/sources", {"connector": "github", "name": "a", "secret": GITHUB_SECRET})
    tgt = await create(c, "/api/v1/targets", target)
    await create(c, "/api/v1/routes", {"source_id": src["id"], "target_id": tgt["id"], "events": ["*"]})
    return str(src["id"])


def _received(rx: Receiver) -> set[str]:
    return {r.body["post"]["event_id"] for r in rx.requests}


async def test_a_drain_asks_once_for_help_however_many_full_batches_it_claims(runtime: Runtime) -> None:
    """Each drain enqueues one helper drain at its first full batch (the helper asks for the next): per
    full batch, drains piled up in the queue only to find every slot taken."""
    size = batch_size(runtime.settings)
    await _insert_deliveries(runtime, size * 3 + 1, lambda i: f"k{i}")  # their route is gone: quick to finish

    class Counting:
        calls = 0

        async def notify(self) -> None:
            self.calls += 1

    counting = Counting()
    runtime.dispatcher = counting
    assert await _drain(runtime) == size * 3 + 1
    assert counting.calls == 1


async def test_webhooks_flow_through_arq_workers(scaled_client: httpx.AsyncClient, receiver: Receiver) -> None:
    sid = await _pipeline(scaled_client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    events = [await fire(scaled_client, sid, n) for n in range(40)]

    async def all_in() -> bool:
        return set(events) <= _received(receiver)

    await wait_for(all_in)
    assert len(receiver.requests) == 40
    ready = (await scaled_client.get("/readyz")).json()
    assert ready["checks"] == {"database": "ok", "redis": "ok"}


async def test_sweeper_delivers_after_redis_is_flushed(
    scaled_client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    sid = await _pipeline(scaled_client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    client = aioredis.Redis.from_url(settings.redis_url)
    events = []
    for n in range(20):
        events.append(await fire(scaled_client, sid, n))
        await client.flushdb()  # every queued job vanishes
    await client.aclose()

    async def all_in() -> bool:
        return set(events) <= _received(receiver)

    await wait_for(all_in)


async def test_circuit_breaker_opens_probes_half_open_and_closes(
    scaled_client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    # the worker builds its runtime from these settings
    settings.breaker_threshold = 3
    settings.breaker_cooldown = 0.6
    receiver.default = 503
    sid = await _pipeline(
        scaled_client, {"kind": "webhook", "name": "rx", "url": receiver.url, "retry_schedule": [0.05] * 40}
    )
    tid = (await scaled_client.get("/api/v1/targets")).json()[0]["id"]
    event_id = await fire(scaled_client, sid, 1)

    async def breaker() -> dict[str, Any]:
        data: dict[str, Any] = (await scaled_client.get(f"/api/v1/targets/{tid}/breaker")).json()
        return data

    async def opened() -> bool:
        return (await breaker())["state"] == "open"

    await wait_for(opened)
    assert (await breaker())["consecutive_failures"] >= 3
    sent_when_open = len(receiver.requests)
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == sent_when_open  # paused: no hammering while open
    receiver.default = 200

    async def delivered() -> bool:
        ev = (await scaled_client.get(f"/api/v1/events/{event_id}")).json()
        return bool(ev["status"] == "delivered")

    await wait_for(delivered)  # after the cooldown one probe goes out, succeeds, and closes the breaker
    state = await breaker()
    assert state["state"] == "closed" and state["consecutive_failures"] == 0


async def test_breaker_reset_over_the_api(scaled_client: httpx.AsyncClient, runtime: Runtime) -> None:
    await _pipeline(scaled_client, {"kind": "inbox", "name": "box"})
    tid = (await scaled_client.get("/api/v1/targets")).json()[0]["id"]
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.update(t.targets).values(breaker_state="disabled", consecutive_failures=9))
    assert (await scaled_client.get(f"/api/v1/targets/{tid}/breaker")).json()["state"] == "disabled"
    reset = (await scaled_client.post(f"/api/v1/targets/{tid}/breaker/reset")).json()
    assert (reset["state"], reset["consecutive_failures"]) == ("closed", 0)
    denied = await scaled_client.post(f"/api/v1/targets/{tid}/breaker/reset", headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401


async def test_redis_rate_limit_is_shared_between_workers(settings: Settings) -> None:
    a = aioredis.Redis.from_url(settings.redis_url)
    b = aioredis.Redis.from_url(settings.redis_url)
    one, two = RedisRateLimiter(a), RedisRateLimiter(b)
    waits = [await (one if i % 2 else two).wait_time("tgt_shared", 2.0) for i in range(6)]
    assert waits[:2] == [0.0, 0.0]  # a burst of one second's worth
    assert all(w > 0 for w in waits[2:])  # then both limiters see the same budget spent
    await a.aclose()
    await b.aclose()


async def test_postgres_outage_answers_503_never_a_false_202_and_recovers(
    client: httpx.AsyncClient,
    worker: Worker,
    fast_ingest: bool,
    receiver: Receiver,
    settings: Settings,
    runtime: Runtime,
) -> None:
    """While the database refuses connections ingest answers 503 (the provider retries); afterwards it
    accepts again without a restart, and every event that got a 202 is delivered."""
    sid = await _pipeline(client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    accepted = [await fire(client, sid, 1)]
    name = settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        for n in range(2, 6):
            if n == 4:
                runtime.cache.invalidate()  # a cold cache must not turn the outage into a 404 or a 500
            body, headers = github_request(github_issue(n))
            resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "storage_unavailable"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    accepted += [await fire(client, sid, n) for n in range(6, 9)]

    async def all_in() -> bool:
        return set(accepted) <= _received(receiver)

    await wait_for(all_in, timeout=20)


async def test_a_postgres_restart_costs_at_most_one_refused_webhook_then_all_are_delivered(
    client: httpx.AsyncClient, worker: Worker, fast_ingest: bool, receiver: Receiver, settings: Settings
) -> None:
    """Pooled connections are not pinged before use: after every backend is gone (a restart), the first
    webhook may meet a dead connection (503, the provider sends it again), then the pool is renewed."""
    sid = await _pipeline(client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    accepted = [await fire(client, sid, 1)]
    name = settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await admin.close()
    refused = 0
    for n in range(2, 8):
        body, headers = github_request(github_issue(n))
        resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
        if resp.status_code == 503:
            assert resp.json()["error"]["code"] == "storage_unavailable"
            refused += 1
            resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)  # the provider's retry
        assert resp.status_code == 202, resp.text
        accepted.append(resp.json()["event_id"])
    assert refused <= 1

    async def all_in() -> bool:
        return set(accepted) <= _received(receiver)

    await wait_for(all_in, timeout=20)


async def test_nul_and_lone_surrogates_are_stored_on_postgres(client: httpx.AsyncClient, fast_ingest: bool) -> None:
    """Postgres text refuses NUL: the event type, dedup key and subject are stored cleaned (a 503 would make
    the provider retry for ever)."""
    import hashlib
    import hmac

    src = await create(client, "/api/v1/sources", {"connector": "generic-hmac", "name": "g", "secret": "s"})
    body = b'{"type": "deal\\u0000.won\\ud800", "id": "evt\\u00001", "subject": "d\\u00007"}'
    headers = {"X-Signature": hmac.new(b"s", body, hashlib.sha256).hexdigest()}
    resp = await client.post(f"/hooks/{src['id']}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    event = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert (event["type"], event["subject"]) == ("deal.won?", "d7")
    assert event["payload"]["type"] == "deal\u0000.won?"
    assert (await client.post(f"/hooks/{src['id']}", content=body, headers=headers)).status_code == 200


async def test_two_processes_bootstrapping_the_admin_key_at_once(runtime: Runtime) -> None:
    """Two API processes starting together on a fresh shared database: both start."""
    from hub.api.keys import bootstrap_admin_key

    async with runtime.engine.begin() as conn:
        await conn.execute(sa.delete(t.api_keys))
    for _ in range(5):
        results = await asyncio.gather(*(bootstrap_admin_key(runtime.engine, "same-key-0123456789") for _ in range(4)))
        assert sum(results) <= 1
        async with runtime.engine.begin() as conn:
            await conn.execute(sa.delete(t.api_keys))
