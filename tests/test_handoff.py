"""New deliveries handed to the embedded worker by the ingest commit (hub/ingest/handoff.py), and the
embedded default's one writer for ingest and delivery (hub/delivery/sqlite_path.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.db import tables as t
from hub.db.engine import create_engine
from hub.db.migrate import upgrade
from hub.delivery import embedded
from hub.delivery.anchors import NewAnchor, load_anchors, thread_hash, write_anchors
from hub.delivery.breaker import BreakerState, load_states
from hub.delivery.claim import claim_due
from hub.delivery.sqlite_path import SqlitePath
from hub.ids import new_id
from hub.ingest.handoff import Lease, lease_rows
from hub.ingest.sqlite_writer import SqliteIngestWriter
from hub.runtime import Runtime
from hub.targets.base import ThreadAnchor
from tests.conftest import create_pipeline, fire, make_settings, running_app, wait_for
from tests.receiver import Receiver, serve_receiver


def _row(did: str, target: str, order_key: str, due: float) -> tuple[object, ...]:
    """Values of ``DELIVERY_COLUMNS`` for a new pending delivery."""
    return (did, "evt", "rte", target, order_key, "pending", 0, due, None, None, None, 0.0, 0.0, None)


def test_due_deliveries_of_free_threads_are_leased_in_order() -> None:
    rows = [
        _row("d1", "t", "issue-1", 1.0),
        _row("d2", "t", "issue-1", 1.0),  # behind d1 in the same batch
        _row("d3", "t", "issue-2", 1.0),
        _row("d4", "t", "issue-3", 5.0),  # not due yet (a coalescing window)
        _row("d5", "t", "issue-4", 1.0),  # its thread has an unfinished delivery stored
        _row("d6", "u", "issue-1", 1.0),  # same key, another target: another thread
    ]
    assert lease_rows(rows, {("t", "issue-4")}, Lease(limit=10, until=60.0, now=2.0)) == [0, 2, 5]
    assert [r[5] for r in rows] == ["sending", "pending", "sending", "pending", "pending", "sending"]
    assert [r[8] for r in rows] == [60.0, None, 60.0, None, None, 60.0]


def test_no_more_than_the_reserved_slots_are_leased_and_a_thread_stays_in_order() -> None:
    rows = [_row("d1", "t", "a", 1.0), _row("d2", "t", "b", 1.0), _row("d3", "t", "b", 1.0), _row("d4", "t", "c", 1.0)]
    assert lease_rows(rows, set(), Lease(limit=1, until=60.0, now=2.0)) == [0]
    assert [r[5] for r in rows] == ["sending", "pending", "pending", "pending"]


class _ClaimSpy:
    def __init__(self) -> None:
        self.claimed: list[str] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> list[str]:
        ids = await claim_due(*args, **kwargs)
        self.claimed += ids
        return ids


async def _deliveries(rt: Runtime) -> list[Any]:
    d = t.deliveries
    async with rt.engine.connect() as conn:
        return list(await conn.execute(sa.select(d.c.id, d.c.event_id, d.c.status, d.c.attempts).order_by(d.c.id)))


async def test_a_new_delivery_is_sent_without_being_claimed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _ClaimSpy()
    monkeypatch.setattr(embedded, "claim_due", spy)
    async with serve_receiver(Receiver()) as rx, running_app(make_settings(tmp_path)) as (app, client):
        rt: Runtime = app.state.runtime
        ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": rx.url})
        event_id = await fire(client, ids["source_id"])

        async def delivered() -> bool:
            return [(r.event_id, r.status, r.attempts) for r in await _deliveries(rt)] == [(event_id, "delivered", 1)]

        await wait_for(delivered)
        assert len(rx.requests) == 1 and rx.requests[0].body["post"]["event_id"] == event_id
        assert spy.claimed == []


async def test_a_post_whose_thread_is_in_flight_waits_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second change of an issue arrives while the first post is being sent: it is stored pending,
    claimed once the first is recorded, and reaches the target second."""
    spy = _ClaimSpy()
    monkeypatch.setattr(embedded, "claim_due", spy)
    async with serve_receiver(Receiver(delay=0.5)) as rx, running_app(make_settings(tmp_path)) as (app, client):
        rt: Runtime = app.state.runtime
        ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": rx.url})
        first = await fire(client, ids["source_id"], number=7, action="opened")
        await wait_for(lambda: asyncio.sleep(0, len(rx.requests) == 1))  # the first post is at the target
        second = await fire(client, ids["source_id"], number=7, action="edited")

        async def both_delivered() -> bool:
            return {r.status for r in await _deliveries(rt)} == {"delivered"} and len(rx.requests) == 2

        await wait_for(both_delivered)
        assert [r.body["post"]["event_id"] for r in rx.requests] == [first, second]
        second_delivery = [r.id for r in await _deliveries(rt) if r.event_id == second]
        assert spy.claimed == second_delivery


async def test_webhooks_beyond_the_free_slots_are_claimed_later_each_sent_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, worker_concurrency=1)
    async with serve_receiver(Receiver(delay=0.05)) as rx, running_app(settings) as (app, client):
        rt: Runtime = app.state.runtime
        ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": rx.url})
        events = await asyncio.gather(*(fire(client, ids["source_id"], number=n) for n in range(1, 7)))

        async def all_delivered() -> bool:
            rows = await _deliveries(rt)
            return len(rows) == 6 and all(r.status == "delivered" for r in rows)

        await wait_for(all_delivered)
        assert sorted(r.body["post"]["event_id"] for r in rx.requests) == sorted(events)
        assert {r.attempts for r in await _deliveries(rt)} == {1}


@pytest.mark.parametrize("path", ["sqlalchemy", "sqlite3"])
async def test_a_retried_dead_letter_waits_while_its_thread_is_in_flight(tmp_path: Path, path: str) -> None:
    """The same claim on both paths: the async engine's, and the embedded writer's plain sqlite3."""
    async with running_app(make_settings(tmp_path, embedded_worker=False)) as (app, _):
        rt: Runtime = app.state.runtime
        sqlite = rt.sqlite if path == "sqlite3" else None
        assert path == "sqlalchemy" or sqlite is not None
        now = time.time()
        old, later = new_id("dlv"), new_id("dlv")
        common = {"event_id": "evt_x", "route_id": "rte_x", "target_id": "tgt_x", "order_key": "issue-1"}
        row = {**common, "attempts": 1, "next_attempt_at": now - 1, "created_at": now, "updated_at": now}
        async with rt.engine.begin() as conn:
            await conn.execute(
                t.deliveries.insert(),
                [
                    {**row, "id": old, "status": "pending", "lease_until": None},  # a dead letter just retried
                    {**row, "id": later, "status": "sending", "lease_until": now + 60},  # its thread's next post
                ],
            )
        assert await claim_due(rt.engine, 10, now + 60, now, sqlite) == []
        # the later one's worker dies: its lease runs out, it no longer holds the thread (no deadlock)
        assert await claim_due(rt.engine, 10, now + 200, now + 61, sqlite) == [old]
        async with rt.engine.connect() as conn:
            lease = await conn.scalar(sa.select(t.deliveries.c.lease_until).where(t.deliveries.c.id == old))
        assert lease == now + 200


async def _anchors_and_states(tmp_path: Path, database_url: str | None, plain: bool) -> None:
    """What the engine reads per batch, written through the async engine and read back by it (or by the
    embedded default's plain sqlite3 reader)."""
    settings = make_settings(tmp_path, **({"database_url": database_url} if database_url else {}))
    engine = create_engine(settings)
    await upgrade(engine)
    writer = SqliteIngestWriter(engine.url.database or "") if plain else None
    try:
        now = time.time()
        async with engine.begin() as conn:
            await conn.execute(
                t.targets.insert(),
                [
                    {"id": f"tgt_{n}", "kind": "webhook", "name": n, "config": {}, "enabled": True,
                     "breaker_state": state, "consecutive_failures": fails, "breaker_opened_at": opened,
                     "breaker_until": None, "created_at": now, "updated_at": now}
                    for n, state, fails, opened in (("a", "closed", 0, None), ("b", "open", 5, now))
                ],
            )  # fmt: skip
            await write_anchors(
                conn,
                [NewAnchor("tgt_a", "issue-1", "m1", None, "dlv_1"), NewAnchor("tgt_b", "issue-1", None, "u", "dlv_2")],
                now,
            )
        keys = [("tgt_a", thread_hash("issue-1")), ("tgt_b", thread_hash("issue-1")), ("tgt_a", thread_hash("x"))]
        if writer is not None:
            path = SqlitePath(writer, engine.url.database or "")
            anchors, states = path.anchors(keys), path.states({"tgt_a", "tgt_b", "tgt_c"})
            path.close()
        else:
            anchors = await load_anchors(engine, keys)
            states = await load_states(engine, {"tgt_a", "tgt_b", "tgt_c"})
        assert anchors == {keys[0]: ThreadAnchor("m1", None), keys[1]: ThreadAnchor(None, "u")}
        assert states == {"tgt_a": BreakerState("closed", 0, None, None), "tgt_b": BreakerState("open", 5, now, None)}
    finally:
        if writer is not None:
            writer.close()
        await engine.dispose()


@pytest.mark.parametrize("plain", [False, True], ids=["sqlalchemy", "sqlite3"])
async def test_thread_anchors_and_breaker_states_read_back_on_sqlite(tmp_path: Path, plain: bool) -> None:
    await _anchors_and_states(tmp_path, None, plain)


async def test_thread_anchors_and_breaker_states_read_back_on_postgres(tmp_path: Path, pg_database: str) -> None:
    await _anchors_and_states(tmp_path, pg_database, False)
