"""Retention: finished events past HUB_RETENTION_DAYS go with their deliveries and attempts; pending work
and dead letters stay. On SQLite and on the real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config import Settings
from hub.db import tables as t
from hub.db.engine import create_engine
from hub.db.migrate import upgrade
from hub.delivery import retention
from hub.delivery.retention import cutoff_id, purge_expired
from tests.conftest import create_pipeline, make_settings, running_app, wait_for
from tests.helpers import github_issue, github_request
from tests.pg import create_database, drop_database, sqlalchemy_url

DAY = 86400.0
NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    name = await create_database() if request.param == "postgres" else ""
    eng = create_engine(Settings(_env_file=None, data_dir=tmp_path, database_url=name and sqlalchemy_url(name)))
    try:
        await upgrade(eng)
        yield eng
    finally:
        await eng.dispose()
        if name:
            await drop_database(name)


def _event_id(at: float, n: int) -> str:
    return f"evt_{int(at * 1e9) + n:016x}00000000"


async def _add_event(engine: AsyncEngine, at: float, n: int, statuses: list[str]) -> str:
    event_id = _event_id(at, n)
    deliveries: list[dict[str, Any]] = [
        {
            "id": f"dlv_{event_id}_{i}",
            "event_id": event_id,
            "route_id": "rte_x",
            "target_id": "tgt_x",
            "order_key": f"k{n}",
            "status": status,
            "attempts": 1,
            "next_attempt_at": at,
            "created_at": at,
            "updated_at": at,
        }
        for i, status in enumerate(statuses)
    ]
    async with engine.begin() as conn:
        await conn.execute(
            t.events.insert(),
            {
                "id": event_id,
                "source_id": "src_x",
                "connector": "github",
                "type": "issues.opened",
                "dedup_key": event_id,
                "status": "routed" if statuses else "unrouted",
                "headers": {},
                "body": b"{}",
                "received_at": at,
            },
        )
        if deliveries:
            await conn.execute(t.deliveries.insert(), deliveries)
            await conn.execute(
                t.attempts.insert(),
                [
                    {
                        "id": f"att_{d['id']}",
                        "delivery_id": d["id"],
                        "number": 1,
                        "started_at": at,
                        "latency_ms": 1.0,
                        "outcome": d["status"],
                    }
                    for d in deliveries
                ],
            )
    return event_id


async def _ids(engine: AsyncEngine, table: sa.Table) -> set[str]:
    async with engine.connect() as conn:
        return {r[0] for r in await conn.execute(sa.select(table.c.id))}


def test_cutoff_id_orders_like_event_ids() -> None:
    assert _event_id(NOW - 1, 0) < cutoff_id(NOW) < _event_id(NOW, 1)


async def test_purges_only_old_finished_events_with_their_deliveries_and_attempts(engine: AsyncEngine) -> None:
    old = NOW - 31 * DAY
    gone = [
        await _add_event(engine, old, 1, ["delivered"]),
        await _add_event(engine, old, 2, ["delivered", "skipped"]),
        await _add_event(engine, old, 3, []),  # unrouted or ignored
    ]
    kept = [
        await _add_event(engine, old, 4, ["delivered", "pending"]),  # acknowledged work still to do
        await _add_event(engine, old, 5, ["sending"]),
        await _add_event(engine, old, 6, ["dead"]),  # a dead letter waits for someone to retry it
        await _add_event(engine, old, 7, ["failed"]),
        await _add_event(engine, NOW - 29 * DAY, 8, ["delivered"]),  # not old enough
    ]
    assert await purge_expired(engine, 30 * DAY, NOW, batch=2) == 3  # several batches
    assert await _ids(engine, t.events) == set(kept)
    assert {d.removeprefix("dlv_").rsplit("_", 1)[0] for d in await _ids(engine, t.deliveries)} == set(kept)
    assert len(await _ids(engine, t.attempts)) == len(await _ids(engine, t.deliveries)) == 6
    assert not set(gone) & await _ids(engine, t.events)
    assert await purge_expired(engine, 30 * DAY, NOW) == 0


async def test_the_embedded_worker_purges_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "FIRST_RUN_AFTER", 0.1)
    monkeypatch.setattr(retention, "INTERVAL", 0.2)
    settings = make_settings(tmp_path, retention_days=1 / DAY)  # one second
    async with running_app(settings) as (_, client):
        ids = await create_pipeline(client, {"kind": "inbox", "name": "box"})
        body, headers = github_request(github_issue(1))
        assert (await client.post(f"/hooks/{ids['source_id']}", content=body, headers=headers)).status_code == 202

        async def purged() -> bool:
            return (await client.get("/api/v1/events")).json() == []

        await wait_for(purged)
        assert len((await client.get("/api/v1/inbox")).json()) == 1  # the post stays in the inbox
        assert "hub_events_purged_total 1.0" in (await client.get("/metrics")).text
