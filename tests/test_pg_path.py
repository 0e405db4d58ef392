"""The delivery hot path on plain asyncpg (hub/delivery/pg_path.py), on the real Postgres: it claims, loads
and records what the SQLAlchemy path does, row for row."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from hub.config_cache import RouteInfo
from hub.db import tables as t
from hub.db.engine import create_engine
from hub.db.migrate import upgrade
from hub.delivery.anchors import NewAnchor, thread_hash
from hub.delivery.claim import claim_due
from hub.delivery.engine import Outcome, _record
from hub.delivery.pg_path import PgPath, PlainPg, dsn_of
from hub.ingest.pg_store import store_events_pg
from hub.ingest.store import NewEvent
from hub.metrics import Metrics
from hub.targets.base import SendResult
from tests.conftest import make_settings


def test_a_compiled_statement_takes_its_parameters_by_name_with_its_literals() -> None:
    d = t.deliveries
    stmt = (
        sa.update(d).where(d.c.id == sa.bindparam("b_id"), d.c.status == "sending").values(attempts=sa.bindparam("n"))
    )
    plain = PlainPg(stmt)
    assert plain.sql.startswith("UPDATE deliveries SET attempts=$1::INTEGER WHERE deliveries.id = $2")
    assert plain.args({"b_id": "dlv_1", "n": 3}) == (3, "dlv_1", "sending")


async def _stored(pg: PgPath, routes: list[RouteInfo], key: str) -> list[str]:
    headers = {"x-github-event": "issues"}
    new = NewEvent("src_1", "github", "issues.opened", key, "issue/7", headers, b"{}", time.time(), "routed")
    (stored,) = await store_events_pg(pg, [(new, routes)])
    return stored.delivery_ids


async def test_claim_load_and_record_on_asyncpg_write_what_sqlalchemy_writes(tmp_path: Path, pg_database: str) -> None:
    engine = create_engine(make_settings(tmp_path, database_url=pg_database))
    await upgrade(engine)
    pg = PgPath(dsn_of(engine.url))
    routes = [RouteInfo(f"rte_{i}", "src_1", f"tgt_{i}", ["*"], None, True) for i in (1, 2)]
    rows: dict[str, Any] = {}
    try:
        for kind in ("sqlalchemy", "asyncpg"):
            ids = await _stored(pg, routes, f"k-{kind}")
            now = time.time()
            claimed = await claim_due(engine, 10, now + 60, now, pg=pg if kind == "asyncpg" else None)
            assert sorted(claimed) == sorted(ids)
            assert await claim_due(engine, 10, now + 60, now, pg=pg) == []  # leased: not claimable again
            loaded = {r.id: r for r in await pg.load(claimed)}
            assert loaded[ids[0]].headers == {"x-github-event": "issues"} and loaded[ids[0]].body == b"{}"
            first, second = (loaded[i] for i in ids)
            anchor = NewAnchor("tgt_1", "issue/7", "msg-1", "https://rse.example/m/1", first.id)
            delivered = SendResult(
                "delivered", status_code=201, latency_ms=12.5, response_excerpt="ok", remote_id="msg-1"
            )
            outcomes = [
                Outcome(first.id, first.lease_until, "delivered", 1, now, None, 201, delivered, now, anchor, "inline"),
                Outcome(second.id, second.lease_until, "pending", 1, now + 30, "HTTP 503", 503, None, now),
            ]
            rt = SimpleNamespace(sqlite=None, pg=pg if kind == "asyncpg" else None, engine=engine, metrics=Metrics())
            await _record(rt, outcomes)  # type: ignore[arg-type]
            async with engine.begin() as conn:
                deliveries = (await conn.execute(sa.select(t.deliveries).order_by(t.deliveries.c.route_id))).all()
                attempts = (await conn.execute(sa.select(t.attempts))).all()
                anchors = (await conn.execute(sa.select(t.thread_anchors))).all()
                for table in (t.attempts, t.thread_anchors, t.deliveries, t.events):
                    await conn.execute(sa.delete(table))
            volatile = {
                "id",
                "event_id",
                "delivery_id",
                "created_at",
                "updated_at",
                "delivered_at",
                "next_attempt_at",
                "started_at",
            }
            rows[kind] = [
                [{k: v for k, v in r._mapping.items() if k not in volatile} for r in rs]
                for rs in (deliveries, attempts, anchors)
            ]
            if kind == "asyncpg":
                await _record(rt, [])  # nothing to write: no statement, no error
        assert rows["asyncpg"] == rows["sqlalchemy"]
        deliveries, attempts, anchors = rows["asyncpg"]
        assert [d["status"] for d in deliveries] == ["delivered", "pending"]
        assert [d["lease_until"] for d in deliveries] == [None, None]
        assert attempts == [
            {
                "number": 1,
                "latency_ms": 12.5,
                "outcome": "delivered",
                "status_code": 201,
                "error": None,
                "response_excerpt": "ok",
            }
        ]
        assert anchors[0]["remote_id"] == "msg-1" and anchors[0]["thread_hash"] == thread_hash("issue/7")
    finally:
        await pg.close()
        await engine.dispose()


async def test_thread_anchors_and_breaker_states_read_on_asyncpg(tmp_path: Path, pg_database: str) -> None:
    engine = create_engine(make_settings(tmp_path, database_url=pg_database))
    await upgrade(engine)
    pg = PgPath(dsn_of(engine.url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                t.thread_anchors.insert(),
                [
                    {
                        "target_id": "tgt_1",
                        "thread_hash": thread_hash(k),
                        "thread_key": k,
                        "remote_id": f"r-{k}",
                        "remote_url": None,
                        "delivery_id": "dlv_x",
                        "created_at": 1.0,
                    }
                    for k in ("a", "b")
                ],
            )
        wanted = {("tgt_1", thread_hash("a")), ("tgt_1", thread_hash("c")), ("tgt_2", thread_hash("a"))}
        found = await pg.anchors(wanted)
        assert list(found) == [("tgt_1", thread_hash("a"))] and found[("tgt_1", thread_hash("a"))].remote_id == "r-a"
        assert await pg.anchors([]) == {}
        assert await pg.states({"tgt_missing"}) == {}
    finally:
        await pg.close()
        await engine.dispose()
