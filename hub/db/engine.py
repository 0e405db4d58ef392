"""Async engine creation: SQLite (WAL, full sync) on the embedded default, asyncpg when scaled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.config import Settings


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if settings.is_sqlite:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=4, max_overflow=4)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No ping at every checkout: it was a round trip per statement group, a sixth of a worker's CPU.
    # After Postgres restarts, the first use of a dead pooled connection fails (that ingest batch answers
    # 503 and the provider sends again; a delivery batch is retried after its lease) and SQLAlchemy then
    # replaces every connection of the pool.
    return create_async_engine(url, pool_size=10, max_overflow=10)
