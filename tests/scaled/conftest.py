"""Scaled mode in one test process: the app (API) and an arq worker on the real Postgres and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from arq.worker import Worker
from fastapi import FastAPI

from hub.config import Settings
from hub.scaled.worker import build_worker, close_worker
from tests.conftest import make_settings
from tests.helpers import AUTH
from tests.pg import fresh_redis_db


@pytest.fixture
def settings(tmp_path: Path, pg_database: str) -> Settings:
    return make_settings(
        tmp_path, database_url=pg_database, redis_url=fresh_redis_db(), sweep_interval=0.1, delivery_lease=2.0
    )


@pytest.fixture
async def worker(app: FastAPI, settings: Settings) -> AsyncIterator[Worker]:
    """An arq worker running in this event loop (after the app migrated the database)."""
    w = build_worker(settings, handle_signals=False)
    task = asyncio.create_task(w.async_run())
    try:
        yield w
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await close_worker(w)


@pytest.fixture
async def scaled_client(app: FastAPI, worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.test", headers=AUTH) as c:
        yield c
