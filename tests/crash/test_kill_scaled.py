"""Scaled mode under crashes, with real processes on the real Postgres and a real Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.crash.harness import (
    Burst,
    Deployment,
    assert_ledger,
    client,
    issue_payloads,
    received_events,
    setup_pipeline,
    wait_received,
)
from tests.helpers import github_issue
from tests.pg import PrivateRedis
from tests.receiver import Receiver, free_port, serve_receiver

pytestmark = pytest.mark.slow
WORKER_CONCURRENCY = 8


@pytest.fixture
def redis_server(tmp_path: Path) -> PrivateRedis:
    server = PrivateRedis(free_port(), tmp_path).start()
    yield server  # type: ignore[misc]
    server.stop()


def scaled_env(database: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": database,
        "HUB_REDIS_URL": redis_url,
        "HUB_DELIVERY_LEASE": "2",
        "HUB_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "HUB_SWEEP_INTERVAL": "0.2",
        **extra,
    }


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
async def test_worker_stopped_while_sending(
    how: str, tmp_path: Path, pg_database: str, redis_server: PrivateRedis
) -> None:
    """SIGKILL (a crash) or SIGTERM (a deploy): the worker's in-flight sends come back through their leases."""
    hub = Deployment(tmp_path, scaled_env(pg_database, redis_server.url), workers=1)
    async with serve_receiver(Receiver(delay=0.05)) as rx, client(hub.base) as c:
        try:
            await hub.start()
            burst = Burst(c, await setup_pipeline(c, rx), issue_payloads(200))
            killed = asyncio.Event()

            async def kill_when_busy() -> None:
                while len(rx.requests) < 40:
                    await asyncio.sleep(0.01)
                if how == "sigkill":
                    hub.workers[0].kill9()  # while it has sends in flight (the receiver answers slowly)
                else:
                    assert hub.workers[0].terminate(timeout=10) == 0  # a graceful stop: prompt and clean
                killed.set()
                await asyncio.sleep(0.5)
                hub.workers[0].start()
                await hub.wait_worker(0)

            killer = asyncio.create_task(kill_when_busy())
            await burst.run(concurrency=16)
            await killer
            assert killed.is_set()
            await burst.resend_unanswered()
            await wait_received(rx, set(burst.accepted.values()))
            assert_ledger(rx, burst.accepted, max_duplicates=WORKER_CONCURRENCY)
        finally:
            hub.stop()


async def test_sigkill_api_during_burst(tmp_path: Path, pg_database: str, redis_server: PrivateRedis) -> None:
    hub = Deployment(tmp_path, scaled_env(pg_database, redis_server.url), workers=1)
    async with serve_receiver(Receiver()) as rx, client(hub.base) as c:
        try:
            await hub.start()
            burst = Burst(c, await setup_pipeline(c, rx), issue_payloads(300))

            async def kill_at_third() -> None:
                if len(burst.accepted) >= 100 and hub.api.proc and hub.api.proc.poll() is None:
                    hub.api.kill9()

            await burst.run(concurrency=16, after_each=kill_at_third)
            acked = dict(burst.accepted)
            assert 100 <= len(acked) < 300
            await hub.restart_api()
            await burst.resend_unanswered()
            assert all(burst.accepted[i] == e for i, e in acked.items())  # a resend answers the first id
            await wait_received(rx, set(burst.accepted.values()))
            assert assert_ledger(rx, burst.accepted, max_duplicates=0) == {}  # the workers were never hit
        finally:
            hub.stop()


@pytest.mark.parametrize("how", ["restart", "flushall"])
async def test_redis_restart_or_flushall_during_burst(
    tmp_path: Path, pg_database: str, redis_server: PrivateRedis, how: str
) -> None:
    hub = Deployment(tmp_path, scaled_env(pg_database, redis_server.url), workers=2)
    async with serve_receiver(Receiver()) as rx, client(hub.base) as c:
        try:
            await hub.start()
            burst = Burst(c, await setup_pipeline(c, rx), issue_payloads(300))
            done = False

            async def disrupt() -> None:
                nonlocal done
                if len(burst.accepted) >= 100 and not done:
                    done = True
                    if how == "flushall":
                        redis_server.flushall()
                    else:
                        redis_server.stop()
                        await asyncio.sleep(1.0)
                        redis_server.start()

            await burst.run(concurrency=16, after_each=disrupt)
            assert done
            await burst.resend_unanswered()
            await wait_received(rx, set(burst.accepted.values()))
            assert_ledger(rx, burst.accepted, max_duplicates=2 * WORKER_CONCURRENCY)
        finally:
            hub.stop()


async def test_target_down_then_recovers_everything_arrives_in_thread_order(
    tmp_path: Path, pg_database: str, redis_server: PrivateRedis
) -> None:
    env = scaled_env(pg_database, redis_server.url, HUB_BREAKER_COOLDOWN="0.5")
    hub = Deployment(tmp_path, env, workers=2)
    async with serve_receiver(Receiver(default=503)) as rx, client(hub.base) as c:
        try:
            await hub.start()
            actions = ("opened", "closed", "reopened", "closed")
            payloads = [(github_issue(n, action), "issues") for n in range(12) for action in actions]
            burst = Burst(c, await setup_pipeline(c, rx), payloads)
            sent: dict[str, list[str]] = {}

            async def one_issue(n: int) -> None:  # one issue's events in order, issues side by side
                for k in range(len(actions)):
                    i = n * len(actions) + k
                    assert await burst.send(i)
                    sent.setdefault(f"github:octocat/Hello-World#{n}", []).append(burst.accepted[i])

            await asyncio.gather(*(one_issue(n) for n in range(12)))
            deadline = time.monotonic() + 60
            while len(rx.requests) < 12:  # the target keeps failing for a while: every thread was tried
                assert time.monotonic() < deadline, f"only {len(rx.requests)} attempts while the target was down"
                await asyncio.sleep(0.1)
            assert all(r.status == 503 for r in rx.requests)
            rx.default = 200
            await wait_received(rx, set(burst.accepted.values()))
            assert_ledger(rx, burst.accepted, max_duplicates=0)
            assert received_events(rx) == set(burst.accepted.values())
            seen: dict[str, list[str]] = {}
            for r in rx.requests:
                seen.setdefault(r.body["post"]["thread_key"], []).append(r.body["post"]["event_id"])
            for thread, expected in sent.items():
                calls = seen[thread]
                collapsed = [e for j, e in enumerate(calls) if j == 0 or calls[j - 1] != e]
                assert collapsed == expected, f"{thread}: a later post went out before an earlier one was delivered"
                delivered = [
                    r.body["post"]["event_id"]
                    for r in rx.requests
                    if r.status == 200 and r.body["post"]["thread_key"] == thread
                ]
                assert delivered == expected
        finally:
            hub.stop()


async def test_worker_serves_its_metrics(tmp_path: Path, pg_database: str, redis_server: PrivateRedis) -> None:
    metrics_port = free_port()
    env = scaled_env(pg_database, redis_server.url, HUB_METRICS_PORT=str(metrics_port))
    hub = Deployment(tmp_path, env, workers=1)
    async with serve_receiver(Receiver()) as rx, client(hub.base) as c:
        try:
            await hub.start()
            burst = Burst(c, await setup_pipeline(c, rx), issue_payloads(5))
            await burst.run(concurrency=1)
            await wait_received(rx, set(burst.accepted.values()))
            worker_lines = ('hub_deliveries_total{outcome="delivered"} 5.0', "hub_attempt_latency_seconds_count 5.0")
            api_lines = (
                'hub_events_received_total{connector="github"} 5.0',
                'hub_deliveries_by_status{status="delivered"} 5.0',
            )
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient() as scrape:
                while True:  # the receiver has them a moment before the worker has recorded them
                    text = (await scrape.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                    api_metrics = (await c.get("/metrics")).text
                    if all(x in text for x in worker_lines) and all(x in api_metrics for x in api_lines):
                        break
                    assert time.monotonic() < deadline, (text, api_metrics)
                    await asyncio.sleep(0.1)
        finally:
            hub.stop()
