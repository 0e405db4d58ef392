"""Crash-test harness: real hub processes, a burst of signed webhooks, and the delivery ledger."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import create_pipeline
from tests.helpers import ADMIN_KEY, AUTH, github_issue, github_request
from tests.procs import HubProcess
from tests.receiver import Receiver, free_port


class Deployment:
    """`hub serve` plus N `hub worker` processes sharing one database (and Redis when scaled)."""

    def __init__(self, tmp_path: Path, env: dict[str, str], workers: int = 0) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            "HUB_DATA_DIR": str(tmp_path / "data"),
            "HUB_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "HUB_LOG_LEVEL": "WARNING",
            "HUB_SECRET_KEY": "crash-test-secret-key-0123",
            **env,
        }
        self.api = HubProcess(["serve", "--port", str(self.port)], self.env, tmp_path / "api.log")
        # each worker serves its metrics once it is ready: that is what start() waits for
        self.worker_ports = [int(self.env.get("HUB_METRICS_PORT") or free_port()) for _ in range(workers)]
        self.workers = [
            HubProcess(["worker"], {**self.env, "HUB_METRICS_PORT": str(port)}, tmp_path / f"worker{i}.log")
            for i, port in enumerate(self.worker_ports)
        ]

    async def start(self) -> None:
        """The API, then the workers; returns once every one of them is ready (no fixed sleeps)."""
        self.api.start()
        await asyncio.to_thread(self.api.wait_healthy, self.base)
        for w in self.workers:
            w.start()
        await asyncio.gather(*(self.wait_worker(i) for i in range(len(self.workers))))

    async def wait_worker(self, i: int) -> None:
        await asyncio.to_thread(self.workers[i].wait_healthy, f"http://127.0.0.1:{self.worker_ports[i]}")

    async def restart_api(self) -> None:
        self.api.start()
        await asyncio.to_thread(self.api.wait_healthy, self.base)

    def stop(self) -> None:
        for p in [self.api, *self.workers]:
            p.stop()


async def setup_pipeline(c: httpx.AsyncClient, rx: Receiver) -> str:
    """A GitHub source routed to a webhook target at the receiver, retried every 0.2 s; the source id."""
    ids = await create_pipeline(c, {"kind": "webhook", "name": "rx", "url": rx.url, "retry_schedule": [0.2] * 50})
    return str(ids["source_id"])


def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10)


class Burst:
    """Sends signed webhooks; ``accepted`` maps each request number to the event id hub acknowledged."""

    def __init__(self, c: httpx.AsyncClient, source_id: str, payloads: list[tuple[dict[str, Any], str]]) -> None:
        self.c = c
        self.source_id = source_id
        self.requests = [github_request(p, delivery=f"guid-{i}") for i, (p, _) in enumerate(payloads)]
        for i, (_, event) in enumerate(payloads):
            self.requests[i][1]["X-GitHub-Event"] = event
        self.accepted: dict[int, str] = {}

    async def send(self, i: int) -> bool:
        body, headers = self.requests[i]
        try:
            resp = await self.c.post(f"/hooks/{self.source_id}", content=body, headers=headers)
        except httpx.HTTPError:
            return False  # no answer: the provider will send it again
        if resp.status_code in (200, 202):
            self.accepted[i] = resp.json()["event_id"]
            return True
        return False

    async def run(self, concurrency: int, after_each: Callable[[], Awaitable[None]] | None = None) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(self.requests)):
            queue.put_nowait(i)

        async def sender() -> None:
            while not queue.empty():
                await self.send(queue.get_nowait())
                if after_each:
                    await after_each()

        await asyncio.gather(*(sender() for _ in range(concurrency)))

    async def resend_unanswered(self) -> None:
        for i in range(len(self.requests)):
            if i not in self.accepted:
                assert await self.send(i), f"request {i} still refused"


def issue_payloads(n: int) -> list[tuple[dict[str, Any], str]]:
    return [(github_issue(i), "issues") for i in range(n)]


async def wait_received(rx: Receiver, event_ids: set[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not event_ids <= received_events(rx):
        if time.monotonic() > deadline:
            missing = event_ids - received_events(rx)
            raise AssertionError(f"{len(missing)} acknowledged events never arrived, e.g. {sorted(missing)[:5]}")
        await asyncio.sleep(0.1)


def received_events(rx: Receiver) -> set[str]:
    """Events the receiver accepted (a refused request is not a delivery)."""
    return {r.body["post"]["event_id"] for r in rx.requests if isinstance(r.body, dict) and 200 <= r.status < 300}


def assert_ledger(rx: Receiver, accepted: dict[int, str], max_duplicates: int) -> dict[str, int]:
    """Every acknowledged event arrived; accepted repeats are few, and a repeat carries the same idempotency key.

    Requests the receiver refused (the target was down) are retries, not duplicates.
    """
    assert set(accepted.values()) <= received_events(rx)
    per_key = Counter(r.headers.get("idempotency-key") for r in rx.requests if 200 <= r.status < 300)
    duplicates = {k: n for k, n in per_key.items() if n > 1}
    assert len(duplicates) <= max_duplicates, f"{len(duplicates)} duplicated deliveries: {duplicates}"
    keys_per_event: dict[str, set[str]] = {}
    for r in rx.requests:
        keys_per_event.setdefault(r.body["post"]["event_id"], set()).add(r.headers["idempotency-key"])
    assert all(len(keys) == 1 for keys in keys_per_event.values()), "one event, one delivery, one key"
    return duplicates
