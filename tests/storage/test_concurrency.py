"""Several fetchers and several subscription keepers at once, on SQLite and on the real Postgres: a feed is
fetched by one of them, a subscription renewed by one of them, notifications are all counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.config import Settings
from hub.db import tables as t
from hub.runtime import Runtime
from hub.storage.cursors import request_fetch
from hub.storage.fetch import run_fetches
from hub.storage.subscriptions import maintain_subscriptions
from tests.conftest import make_settings, wait_for
from tests.pg import create_database, drop_database, sqlalchemy_url
from tests.storage.conftest import PUBLIC_URL, connect, fetched, notify_dropbox, settled, storage_source, storage_state
from tests.storage.standins import StandIns, dropbox_file


@pytest.fixture(params=["sqlite", "postgres"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        yield make_settings(tmp_path, public_url=PUBLIC_URL, storage_interval=3600.0)
        return
    name = await create_database()
    try:
        yield make_settings(tmp_path, public_url=PUBLIC_URL, storage_interval=3600.0, database_url=sqlalchemy_url(name))
    finally:
        await drop_database(name)


async def test_concurrent_fetchers_fetch_a_feed_once(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    src = await storage_source(client, standins, "dropbox")
    await connect(client, src["id"])
    await settled(client, src["id"])
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal += [dropbox_file(f"/Sales/f{i}.txt", f"0{i}") for i in range(3)]
    await asyncio.gather(*(notify_dropbox(client, src["id"]) for _ in range(8)))
    dbx.gate = asyncio.Event()
    calls = dbx.count("files/list_folder/continue")
    fetchers = [asyncio.create_task(run_fetches(runtime, src["id"])) for _ in range(6)]

    async def reading() -> bool:
        return dbx.count("files/list_folder/continue") > calls

    await wait_for(reading)
    await asyncio.sleep(0.2)  # the other fetchers have tried their claim by now
    dbx.gate.set()
    assert sorted(await asyncio.gather(*fetchers)) == [0, 0, 0, 0, 0, 1]
    assert dbx.count("files/list_folder/continue") == calls + 2  # one fetch: two answers of two entries
    assert [e["payload"]["item"]["name"] for e in await fetched(client, src["id"])] == ["f0.txt", "f1.txt", "f2.txt"]


async def test_concurrent_notifications_of_a_new_feed_are_all_counted(runtime: Runtime) -> None:
    await asyncio.gather(*(request_fetch(runtime.engine, "src_new", [""], f"evt_{i}") for i in range(10)))
    c = t.storage_cursors
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(c.c.requested, c.c.done).where(c.c.source_id == "src_new"))).one()
    assert (row.requested, row.done) == (10, 0)


async def test_one_of_several_keepers_renews_a_subscription(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    graph = standins.graph
    src = await storage_source(client, standins, "microsoft-graph")
    await connect(client, src["id"])

    async def active() -> bool:
        sub = (await storage_state(client, src["id"]))["subscription"]
        return bool(sub and sub["status"] == "active")

    await wait_for(active)
    s = t.storage_subscriptions
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.update(s).where(s.c.source_id == src["id"]).values(next_check_at=0))
    patches = graph.count("subscriptions PATCH")
    acted = await asyncio.gather(*(maintain_subscriptions(runtime, src["id"]) for _ in range(5)))
    assert sum(acted) == 1
    assert graph.count("subscriptions PATCH") == patches + 1
    assert len(graph.subscriptions) == 1
