"""Delivery under odd but possible conditions: slow or hostile targets, retries of dead letters, a thread
with a retried delivery, internal errors, purged events, config created a moment ago."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.db import tables as t
from hub.delivery import engine as delivery_engine
from hub.delivery.claim import claim_due
from hub.delivery.engine import process_batch
from hub.ids import new_id
from hub.runtime import Runtime
from tests.conftest import create, create_pipeline, fire, make_settings, running_app, wait_for
from tests.receiver import Received, Receiver

Pipeline = Callable[..., Awaitable[dict[str, Any]]]


async def _delivery(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    data: dict[str, Any] = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]
    return data


async def test_a_trickling_target_gets_a_timeout_not_a_resend_loop(tmp_path: Path) -> None:
    """The per-request timeout restarts with every byte; the total limit does not."""
    connections = 0

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.3)
        except (ConnectionError, OSError):
            pass
        writer.close()

    server = await asyncio.start_server(drip, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    settings = make_settings(tmp_path, delivery_timeout=1.0, delivery_lease=4.0)
    try:
        async with running_app(settings) as (_, client):
            ids = await create_pipeline(client, {"kind": "webhook", "name": "drip", "url": url, "retry_schedule": [60]})
            event_id = await fire(client, ids["source_id"])

            async def attempted() -> bool:
                return (await _delivery(client, event_id))["attempts"] == 1

            await wait_for(attempted, timeout=8)
            delivery = await _delivery(client, event_id)
            assert delivery["status"] == "pending" and delivery["last_error"].startswith("timeout")
            await asyncio.sleep(4.5)  # past the lease: nothing claims it again before its retry is due
            assert connections == 1
    finally:
        server.close()


async def test_interleaved_failures_do_not_open_the_breaker(tmp_path: Path) -> None:
    """One batch whose sends end failure, success, failure…: never two failures in a row, so the breaker
    (threshold 3) stays closed, whatever the batch's snapshot said at its start."""

    async def answer(request: httpx.Request) -> httpx.Response:
        n = int(json.loads(request.content)["post"]["title"].split("#")[1].split()[0])
        await asyncio.sleep(n * 0.05)  # they end in issue order
        return httpx.Response(500 if n % 2 == 0 else 200)

    settings = make_settings(tmp_path, embedded_worker=False, breaker_threshold=3)
    async with running_app(settings) as (app, client):
        rt: Runtime = app.state.runtime
        rt.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": "https://rx.example/hook"})
        for n in range(10):
            await fire(client, ids["source_id"], n)
        now = time.time()
        claimed = await claim_due(rt.engine, 50, now + 60, now)
        assert len(claimed) == 10
        await process_batch(rt, claimed)
        breaker = (await client.get(f"/api/v1/targets/{ids['target_id']}/breaker")).json()
        assert (breaker["state"], breaker["consecutive_failures"]) == ("closed", 0)
        await rt.http.aclose()


async def test_a_retried_dead_letter_gets_a_fresh_schedule(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.script = [(503, {})] * 3 + [(429, {"Retry-After": "0.2"})]
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url, "retry_schedule": [0.05, 0.05]})
    event_id = await fire(client, ids["source_id"])

    async def status_is(status: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await _delivery(client, event_id))["status"] == status

        return check

    await wait_for(await status_is("dead"))
    delivery = await _delivery(client, event_id)
    assert delivery["attempts"] == 3
    assert (await client.post(f"/api/v1/deliveries/{delivery['id']}/retry")).status_code == 202
    await wait_for(await status_is("delivered"))  # the 429 after the retry is retried, not the end
    assert (await _delivery(client, event_id))["attempts"] == 5


async def test_an_internal_error_in_one_delivery_keeps_the_others_outcomes(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(got: Received) -> tuple[int, dict[str, str], bytes]:  # by issue: the two are sent concurrently
        post = got.body.get("post", {}) if isinstance(got.body, dict) else {}
        return (500 if str(post.get("title", "")).startswith("Issue #1 ") else 200), {}, b"{}"

    receiver.respond = answer
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url, "retry_schedule": [30]})
    original = delivery_engine.observe

    async def flaky(*args: Any, **kwargs: Any) -> None:
        if args[2] is False:  # counting a failure for the breaker: the database blips
            raise sa.exc.OperationalError("UPDATE targets", {}, Exception("database is locked"))
        await original(*args, **kwargs)

    monkeypatch.setattr(delivery_engine, "observe", flaky)
    failing, fine = await fire(client, ids["source_id"], 1), await fire(client, ids["source_id"], 2)

    async def both_recorded() -> bool:
        a, b = await _delivery(client, failing), await _delivery(client, fine)
        return a["status"] == "pending" and a["last_error"] is not None and b["status"] == "delivered"

    await wait_for(both_recorded)
    assert len([r for r in receiver.requests if r.body["post"]["event_id"] == fine]) == 1


async def test_a_delivery_whose_event_was_purged_is_dead_not_stuck(
    client: httpx.AsyncClient, pipeline: Pipeline, receiver: Receiver, runtime: Runtime
) -> None:
    ids = await pipeline({"kind": "webhook", "name": "rx", "url": receiver.url})
    now = time.time()
    orphan = new_id("dlv")
    async with runtime.engine.begin() as conn:
        await conn.execute(
            t.deliveries.insert(),
            {
                "id": orphan,
                "event_id": "evt_purged",
                "route_id": ids["route_id"],
                "target_id": ids["target_id"],
                "order_key": "octocat/Hello-World#1",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
    later = await fire(client, ids["source_id"], 1)  # same thread as the orphan

    async def delivered() -> bool:
        return (await _delivery(client, later))["status"] == "delivered"

    await wait_for(delivered)
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.deliveries).where(t.deliveries.c.id == orphan))).mappings().one()
    assert (row["status"], row["last_error"]) == ("dead", "its event is no longer stored")


async def test_a_route_created_a_moment_ago_is_found(runtime: Runtime, client: httpx.AsyncClient) -> None:
    """Another process (the API) creates a target and a route; this worker's cache has not seen them."""
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "a", "secret": "s"})
    await runtime.cache.refresh_if_stale()
    await asyncio.sleep(0.6)
    now = time.time()
    async with runtime.engine.begin() as conn:
        await conn.execute(
            t.targets.insert(),
            {
                "id": "tgt_new",
                "kind": "inbox",
                "name": "n",
                "config": {},
                "enabled": True,
                "breaker_state": "closed",
                "consecutive_failures": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        await conn.execute(
            t.routes.insert(),
            {
                "id": "rte_new",
                "source_id": src["id"],
                "target_id": "tgt_new",
                "events": ["*"],
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            },
        )
    assert await runtime.cache.route("rte_new") is not None
    assert await runtime.cache.target("tgt_new") is not None


async def test_a_huge_answer_is_cut_to_its_excerpt(tmp_path: Path) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=b"x" * 5_000_000)

    settings = make_settings(tmp_path, embedded_worker=False)
    async with running_app(settings) as (app, client):
        rt: Runtime = app.state.runtime
        rt.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": "https://rx.example/hook"})
        event_id = await fire(client, ids["source_id"])
        now = time.time()
        await process_batch(rt, await claim_due(rt.engine, 50, now + 60, now))
        detail = (await client.get(f"/api/v1/events/{event_id}")).json()
        attempt = detail["deliveries"][0]["attempt_log"][0]
        assert attempt["status_code"] == 500 and len(attempt["response_excerpt"]) == 500
        await rt.http.aclose()
