"""kill -9 of `hub serve` (embedded default) in the middle of a burst: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.helpers import ADMIN_KEY, AUTH, GITHUB_SECRET, github_issue, github_request
from tests.procs import HubProcess
from tests.receiver import Receiver, free_port, serve_receiver

pytestmark = pytest.mark.slow

TOTAL = 300
CONCURRENCY = 16
WORKER_CONCURRENCY = 8


async def test_kill_serve_mid_burst_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "HUB_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "HUB_LOG_LEVEL": "WARNING",
    }
    hub = HubProcess(["serve", "--port", str(port)], env, tmp_path / "hub.log").start()
    async with serve_receiver(Receiver()) as rx, httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as c:
        try:
            await asyncio.to_thread(hub.wait_healthy, base)
            src = (
                await c.post("/api/v1/sources", json={"connector": "github", "name": "a", "secret": GITHUB_SECRET})
            ).json()
            tgt = (
                await c.post(
                    "/api/v1/targets",
                    json={"kind": "webhook", "name": "rx", "url": rx.url, "retry_schedule": [0.2] * 10},
                )
            ).json()
            await c.post("/api/v1/routes", json={"source_id": src["id"], "target_id": tgt["id"], "events": ["*"]})
            requests = [github_request(github_issue(n), delivery=f"guid-{n}") for n in range(TOTAL)]
            accepted: dict[int, str] = {}
            killed_at: list[float] = []
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(TOTAL):
                queue.put_nowait(n)

            async def sender() -> None:
                while not queue.empty():
                    n = queue.get_nowait()
                    body, headers = requests[n]
                    try:
                        resp = await c.post(f"/hooks/{src['id']}", content=body, headers=headers)
                    except httpx.HTTPError:
                        continue  # no answer: the provider would send it again (below)
                    if resp.status_code in (200, 202):
                        accepted[n] = resp.json()["event_id"]
                    if len(accepted) >= TOTAL // 3 and not killed_at:
                        killed_at.append(asyncio.get_running_loop().time())
                        hub.kill9()

            await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
            assert killed_at, "the kill happened"
            assert TOTAL // 3 <= len(accepted) < TOTAL, "the kill came in the middle of the burst"
            acked_before_kill = dict(accepted)
            hub.start()
            await asyncio.to_thread(hub.wait_healthy, base)
            # the provider redelivers what got no answer; a repeat of a stored event answers its first id
            for n in range(TOTAL):
                if n not in accepted:
                    body, headers = requests[n]
                    resp = await c.post(f"/hooks/{src['id']}", content=body, headers=headers)
                    assert resp.status_code in (200, 202), resp.text
                    accepted[n] = resp.json()["event_id"]
            for n, event_id in acked_before_kill.items():
                assert accepted[n] == event_id

            def received_events() -> set[str]:
                return {r.body["post"]["event_id"] for r in rx.requests}

            deadline = asyncio.get_running_loop().time() + 60
            while not set(accepted.values()) <= received_events():
                assert asyncio.get_running_loop().time() < deadline, "events lost"
                await asyncio.sleep(0.1)
            lost = set(accepted.values()) - received_events()
            assert lost == set()
            per_key = Counter(rx.idempotency_keys())
            duplicates = {k: n for k, n in per_key.items() if n > 1}
            assert len(duplicates) <= WORKER_CONCURRENCY, duplicates
            per_event_keys: dict[str, set[str]] = {}
            for r in rx.requests:
                per_event_keys.setdefault(r.body["post"]["event_id"], set()).add(r.headers["idempotency-key"])
            assert all(len(keys) == 1 for keys in per_event_keys.values()), "a repeat carries the same key"
        finally:
            hub.stop()
