"""GET /api/v1/stats (the console's overview), /dead-letters/count and /deliveries/{id}/request, on SQLite
and Postgres: rows placed in known buckets come back in those buckets, nothing outside the window counts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.db import tables as t
from hub.runtime import Runtime
from tests.conftest import create, create_pipeline, fire, make_settings, running_app, wait_for
from tests.pg import create_database, drop_database, sqlalchemy_url


def _id(prefix: str, ts: float, n: int) -> str:
    return f"{prefix}_{int(ts * 1e9):016x}{n:08x}"


@pytest.fixture(params=["sqlite", "postgres"])
async def hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    name = await create_database() if request.param == "postgres" else None
    try:
        url = sqlalchemy_url(name) if name else ""
        async with running_app(make_settings(tmp_path, database_url=url)) as (app, client):
            yield app.state.runtime, client
    finally:
        if name:
            await drop_database(name)


async def _seed(rt: Runtime, now: float) -> None:
    """Events and attempts at known ages: 90 s, 30 min, 3 h and 2 days ago."""
    events, attempts = [], []
    for n, age in enumerate((90.0, 90.0, 1800.0, 3 * 3600.0, 2 * 86400.0)):
        ts = now - age
        events.append(
            {
                "id": _id("evt", ts, n),
                "source_id": "src_seed",
                "connector": "github",
                "type": "issues.opened",
                "status": "routed",
                "headers": {},
                "body": b"{}",
                "received_at": ts,
            }
        )
    for n, (age, outcome) in enumerate(
        [(90.0, "delivered"), (90.0, "pending"), (1800.0, "dead"), (3 * 3600.0, "failed"), (2 * 86400.0, "delivered")]
    ):
        ts = now - age
        attempts.append(
            {
                "id": _id("att", ts + 0.5, n),
                "delivery_id": f"dlv_{n}",
                "number": 1,
                "started_at": ts,
                "latency_ms": 3.0,
                "outcome": outcome,
            }
        )
    async with rt.engine.begin() as conn:
        await conn.execute(t.events.insert(), events)
        await conn.execute(t.attempts.insert(), attempts)


def _nonzero(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        b["start"]: {k: b[k] for k in ("events", "delivered", "failures", "dead") if b[k]}
        for b in stats["buckets"]
        if any(b[k] for k in ("events", "delivered", "failures", "dead"))
    }


async def test_counts_land_in_their_buckets(hub: tuple[Runtime, httpx.AsyncClient]) -> None:
    rt, client = hub
    now = time.time()
    await _seed(rt, now)
    hour = (await client.get("/api/v1/stats", params={"window": "1h"})).json()
    assert hour["bucket_seconds"] == 60 and len(hour["buckets"]) == 60
    assert hour["totals"] | {"events_per_second": 0, "delivered_per_second": 0} == {
        "events": 3,  # 90 s (twice) and 30 min ago
        "delivered": 1,
        "failures": 2,  # the retry and the dead letter
        "dead": 1,
        "events_per_second": 0,
        "delivered_per_second": 0,
    }
    assert hour["totals"]["events_per_second"] == round(3 / 3600, 4)
    cells = list(_nonzero(hour).values())
    assert {"events": 2, "delivered": 1, "failures": 1} in cells  # 90 s ago: one minute bucket
    assert {"events": 1, "failures": 1, "dead": 1} in cells  # 30 min ago
    day = (await client.get("/api/v1/stats", params={"window": "1d"})).json()
    assert day["bucket_seconds"] == 900 and len(day["buckets"]) == 96
    assert (day["totals"]["events"], day["totals"]["failures"], day["totals"]["dead"]) == (4, 3, 2)
    assert day["totals"]["delivered"] == 1  # the one two days ago is outside
    assert day["start"] < day["buckets"][1]["start"] < day["end"]


async def test_live_pipeline_dead_letter_count_and_request(hub: tuple[Runtime, httpx.AsyncClient]) -> None:
    rt, client = hub
    ids = await create_pipeline(client, {"kind": "inbox", "name": "box"}, events=["issues.*"])
    event_id = await fire(client, ids["source_id"], 7)

    async def delivered() -> bool:
        ev = (await client.get(f"/api/v1/events/{event_id}")).json()
        return bool(ev["status"] == "delivered")

    await wait_for(delivered)
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["totals"]["events"] == 1 and stats["totals"]["delivered"] == 1
    assert stats["sources"] == [
        {
            "source_id": ids["source_id"],
            "last_event_id": event_id,
            "last_event_type": "issues.opened",
            "last_event_at": stats["sources"][0]["last_event_at"],
        }
    ]
    assert stats["sources"][0]["last_event_at"] is not None
    delivery = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]
    shown = (await client.get(f"/api/v1/deliveries/{delivery['id']}/request")).json()
    assert shown["rendering"]["outcome"] == "posted"
    assert shown["mapping_version"] == delivery["mapping_version"]
    assert "Found a bug #7" in str(shown["rendering"]["post"])
    assert (await client.get("/api/v1/deliveries/dlv_nope/request")).status_code == 404

    assert (await client.get("/api/v1/dead-letters/count")).json() == {"count": 0}
    async with rt.engine.begin() as conn:
        await conn.execute(t.deliveries.update().values(status="dead", last_error="HTTP 503 (retries exhausted)"))
    assert (await client.get("/api/v1/dead-letters/count")).json() == {"count": 1}
    assert (await client.get("/api/v1/dead-letters/count", params={"error_contains": "http 503"})).json() == {
        "count": 1
    }
    assert (await client.get("/api/v1/dead-letters/count", params={"error_contains": "502"})).json() == {"count": 0}
    other = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "other"})
    assert (await client.get("/api/v1/dead-letters/count", params={"target_id": other["id"]})).json()["count"] == 0
    assert (await client.get("/api/v1/stats")).json()["dead_letters"] == 1


async def test_event_filters_time_and_text(hub: tuple[Runtime, httpx.AsyncClient]) -> None:
    rt, client = hub
    await _seed(rt, time.time())
    listed = (await client.get("/api/v1/events", params={"since": "1970-01-02T00:00:00"})).json()
    assert len(listed) == 5
    recent = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3600))
    assert len((await client.get("/api/v1/events", params={"since": recent})).json()) == 3
    assert len((await client.get("/api/v1/events", params={"until": recent})).json()) == 2
    assert len((await client.get("/api/v1/events", params={"q": "ISSUES.open"})).json()) == 5
    assert (await client.get("/api/v1/events", params={"q": "pull_request"})).json() == []
    assert (await client.get("/api/v1/events", params={"q": "%"})).json() == []  # a wildcard is a character
