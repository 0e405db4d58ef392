"""Bulk retry of dead letters, as a tracked job whose progress is readable over the API."""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db import tables as t
from hub.ids import new_id

log = logging.getLogger("hub.bulk")
CHUNK = 500
DEAD_LETTER = ("dead", "failed")


class DeadLetterFilter(BaseModel):
    source_id: str | None = None
    target_id: str | None = None
    since: float | None = Field(None, description="UNIX seconds: deliveries created at or after.")
    until: float | None = Field(None, description="UNIX seconds: deliveries created before.")
    error_contains: str | None = Field(None, description="A substring of the last error (any case).")
    statuses: list[str] = Field(default_factory=lambda: list(DEAD_LETTER))


def matching(f: DeadLetterFilter) -> sa.ColumnElement[bool]:
    d = t.deliveries
    conds: list[sa.ColumnElement[bool]] = [d.c.status.in_([s for s in f.statuses if s in DEAD_LETTER])]
    if f.target_id:
        conds.append(d.c.target_id == f.target_id)
    if f.source_id:
        conds.append(d.c.event_id.in_(sa.select(t.events.c.id).where(t.events.c.source_id == f.source_id)))
    if f.since is not None:
        conds.append(d.c.created_at >= f.since)
    if f.until is not None:
        conds.append(d.c.created_at < f.until)
    if f.error_contains:
        escaped = f.error_contains.replace("/", "//").replace("%", "/%").replace("_", "/_")
        pattern = sa.func.lower(sa.literal(f"%{escaped}%"))  # folded by the database on both sides
        conds.append(sa.func.lower(d.c.last_error).like(pattern, escape="/"))
    return sa.and_(*conds)


async def create_bulk_retry(engine: AsyncEngine, f: DeadLetterFilter) -> dict[str, Any]:
    now = time.time()
    d = t.deliveries
    async with engine.begin() as conn:
        total = await conn.scalar(sa.select(sa.func.count()).select_from(d).where(matching(f)))
        row = {
            "id": new_id("job"),
            "kind": "bulk_retry",
            "params": {**f.model_dump(), "created_before": now},
            "status": "queued",
            "total": int(total or 0),
            "done": 0,
            "error": None,
            "created_at": now,
            "updated_at": now,
        }
        await conn.execute(t.jobs.insert().values(**row))
    return row


async def run_bulk_retry(engine: AsyncEngine, job_id: str) -> int:
    """Make matching dead letters due again, a chunk at a time; safe to run again after a crash."""
    j, d = t.jobs, t.deliveries
    async with engine.connect() as conn:
        job = (await conn.execute(sa.select(j).where(j.c.id == job_id))).mappings().first()
    if job is None or job["status"] in ("done", "failed"):
        return 0
    params = dict(job["params"])
    created_before = params.pop("created_before")
    f = DeadLetterFilter.model_validate(params)
    cond = sa.and_(matching(f), d.c.updated_at < created_before)  # not what was retried since
    done = int(job["done"])
    try:
        while True:
            now = time.time()
            async with engine.begin() as conn:
                ids = [r[0] for r in await conn.execute(sa.select(d.c.id).where(cond).limit(CHUNK))]
                if ids:
                    await conn.execute(
                        sa.update(d)
                        .where(d.c.id.in_(ids), cond)
                        .values(status="pending", next_attempt_at=now, updated_at=now, retry_base=d.c.attempts)
                    )
                done += len(ids)
                await conn.execute(
                    sa.update(j)
                    .where(j.c.id == job_id)
                    .values(
                        status="running" if ids else "done",
                        done=min(done, job["total"]) if ids else done,
                        updated_at=now,
                    )
                )
            if not ids:
                return done
    except Exception as exc:
        log.exception("bulk retry failed", extra={"job_id": job_id})
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(j)
                .where(j.c.id == job_id)
                .values(status="failed", error=f"{type(exc).__name__}: {exc}"[:500], updated_at=time.time())
            )
        raise


async def unfinished_jobs(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [
            r[0] for r in await conn.execute(sa.select(t.jobs.c.id).where(t.jobs.c.status.in_(("queued", "running"))))
        ]
