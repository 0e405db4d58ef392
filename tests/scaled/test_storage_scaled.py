"""Fetch-on-notify in scaled mode: the API stores the Dropbox notification and enqueues the fetch; an arq worker
fetches list_folder/continue from the stand-in and the events it stores are delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from arq.worker import Worker

from hub.config import Settings
from tests.conftest import make_settings, wait_for
from tests.pg import fresh_redis_db
from tests.storage.conftest import PUBLIC_URL, connect, fetched, inbox_route, notify_dropbox, settled, storage_source
from tests.storage.standins import StandIns, dropbox_file, serve_standins


@pytest.fixture
def settings(tmp_path: Path, pg_database: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=pg_database,
        redis_url=fresh_redis_db(),
        sweep_interval=0.1,
        delivery_lease=2.0,
        public_url=PUBLIC_URL,
        storage_interval=3600.0,
    )


@pytest.fixture
async def standins() -> AsyncIterator[StandIns]:
    async with serve_standins() as s:
        yield s


async def test_a_notification_is_fetched_by_an_arq_worker(
    scaled_client: httpx.AsyncClient, standins: StandIns, worker: Worker
) -> None:
    c = scaled_client
    src = await storage_source(c, standins, "dropbox")
    await inbox_route(c, src["id"])
    await connect(c, src["id"])
    await settled(c, src["id"])  # the first fetch (the latest cursor) ran on the worker
    # another process sees a new route within its cache's TTL (2 s): this worker looks again now
    worker.ctx["rt"].cache.invalidate()
    standins.dropbox.journal.append(dropbox_file("/Sales/Forecasts/Q3-forecast.xlsx", "015f0a1c2"))
    await notify_dropbox(c, src["id"])
    await settled(c, src["id"])
    [event] = await fetched(c, src["id"])
    assert event["type"] == "file.changed"

    async def delivered() -> bool:
        return len((await c.get("/api/v1/inbox")).json()) == 1

    try:
        await wait_for(delivered)
    except AssertionError:  # say where the delivery is
        raise AssertionError((await c.get(f"/api/v1/events/{event['id']}")).json()) from None
    [post] = (await c.get("/api/v1/inbox")).json()
    assert post["post"]["title"] == "Q3-forecast.xlsx was saved in Sales/Forecasts by Marie Dupont"
