"""The Alembic migrations produce exactly the schema the code declares, on SQLite and on Postgres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from hub.config import Settings
from hub.db.engine import create_engine
from hub.db.migrate import upgrade
from hub.db.tables import metadata
from tests.pg import create_database, drop_database, sqlalchemy_url


def _diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def _check(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches(tmp_path: Path) -> None:
    await _check(Settings(_env_file=None, data_dir=tmp_path))


async def test_postgres_schema_matches(tmp_path: Path) -> None:
    name = await create_database()
    try:
        await _check(Settings(_env_file=None, data_dir=tmp_path, database_url=sqlalchemy_url(name)))
    finally:
        await drop_database(name)
