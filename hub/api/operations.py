"""Dead letters, bulk retries as tracked jobs, and circuit breakers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.api.common import AdminKey, IsoDateTime, ReadKey, RuntimeDep, get_row, iso, now
from hub.api.deliveries import DeliveryOut, delivery_out
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.db import tables as t
from hub.delivery import breaker
from hub.delivery.bulk import DeadLetterFilter, create_bulk_retry, matching
from hub.errors import HubError, not_found

router = APIRouter(prefix="/api/v1", tags=["operations"], route_class=TextGuardRoute)


class BulkRetryIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"target_id": "tgt_…", "since": "2026-11-01T00:00:00Z", "error_contains": "HTTP 503"}]
        },
    )
    source_id: str | None = None
    target_id: str | None = None
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None
    error_contains: str | None = None


class JobOut(BaseModel):
    id: str
    kind: str
    status: str = Field(description="queued | running | done | failed")
    total: int
    done: int
    params: dict[str, Any]
    error: str | None
    created_at: str | None
    updated_at: str | None


class BreakerOut(BaseModel):
    target_id: str
    state: str = Field(description="closed | open | half_open | disabled")
    consecutive_failures: int
    opened_at: str | None
    retry_at: str | None
    reason: str | None = Field(None, description="Why the target is disabled, when it is.")


def _job_out(r: Any) -> JobOut:
    return JobOut(
        id=r["id"],
        kind=r["kind"],
        status=r["status"],
        total=r["total"],
        done=r["done"],
        params=r["params"],
        error=r["error"],
        created_at=iso(r["created_at"]),
        updated_at=iso(r["updated_at"]),
    )


def utc(moment: datetime) -> datetime:
    """A time without a zone is UTC, whatever the server's zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _filter(
    source_id: str | None,
    target_id: str | None,
    since: datetime | None,
    until: datetime | None,
    error_contains: str | None,
) -> DeadLetterFilter:
    return DeadLetterFilter(
        source_id=source_id,
        target_id=target_id,
        since=utc(since).timestamp() if since else None,
        until=utc(until).timestamp() if until else None,
        error_contains=error_contains,
    )


@router.get("/dead-letters", response_model=list[DeliveryOut], summary="Deliveries that are dead or failed")
async def dead_letters(
    rt: RuntimeDep,
    _: ReadKey,
    source_id: str | None = None,
    target_id: str | None = None,
    since: IsoDateTime | None = Query(None, description="Created at or after (ISO 8601; UTC without a zone)."),
    until: IsoDateTime | None = Query(None, description="Created before (ISO 8601; UTC without a zone)."),
    error_contains: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[DeliveryOut]:
    d = t.deliveries
    cond = matching(_filter(source_id, target_id, since, until, error_contains))
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(d).where(cond).order_by(d.c.id.desc()).limit(limit))).mappings()
        return [delivery_out(r) for r in rows]


@router.post(
    "/deliveries/bulk-retry",
    status_code=202,
    response_model=JobOut,
    summary="Retry every dead letter matching a filter, as a tracked job",
    responses={503: {"description": "no_job_runner / queue_unavailable"}},
)
async def bulk_retry(body: BulkRetryIn, rt: RuntimeDep, who: AdminKey) -> JobOut:
    if rt.background is None:  # checked first: no job row is left queued with nobody to run it
        raise HubError(503, "no_job_runner", "this process cannot run background jobs")
    f = _filter(body.source_id, body.target_id, body.since, body.until, body.error_contains)
    row = await create_bulk_retry(rt.engine, f)
    await record(
        rt.engine, who, "job", row["id"], "bulk_retry", details=body.model_dump(mode="json", exclude_none=True)
    )
    try:
        await rt.background("bulk_retry", row["id"])
    except Exception as exc:  # the queue is down: the job must not stay "queued" with nobody to run it
        async with rt.engine.begin() as conn:
            await conn.execute(
                sa.update(t.jobs)
                .where(t.jobs.c.id == row["id"])
                .values(status="failed", error=f"could not be queued: {type(exc).__name__}", updated_at=now())
            )
        raise HubError(503, "queue_unavailable", "the job queue is unavailable; try again") from None
    return _job_out(row)


@router.get("/jobs", response_model=list[JobOut], summary="Background jobs, newest first")
async def list_jobs(rt: RuntimeDep, _: ReadKey, limit: int = Query(50, ge=1, le=500)) -> list[JobOut]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit))).mappings()
        return [_job_out(r) for r in rows]


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A background job and its progress")
async def get_job(job_id: str, rt: RuntimeDep, _: ReadKey) -> JobOut:
    async with rt.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id))).mappings().first()
    if row is None:
        raise not_found("job", job_id)
    return _job_out(row)


def _breaker_out(row: Any) -> BreakerOut:
    return BreakerOut(
        target_id=row["id"],
        state=row["breaker_state"],
        consecutive_failures=row["consecutive_failures"],
        opened_at=iso(row["breaker_opened_at"]),
        retry_at=iso(row["breaker_until"]),
        reason=row["disabled_reason"] if row["breaker_state"] == "disabled" else None,
    )


@router.get("/targets/{target_id}/breaker", response_model=BreakerOut, summary="A target's circuit breaker")
async def get_breaker(target_id: str, rt: RuntimeDep, _: ReadKey) -> BreakerOut:
    return _breaker_out(await get_row(rt, t.targets, target_id, "target"))


@router.post(
    "/targets/{target_id}/breaker/reset",
    response_model=BreakerOut,
    summary="Close a target's breaker (re-enables a disabled target) and send its waiting deliveries now",
)
async def reset_breaker(target_id: str, rt: RuntimeDep, who: AdminKey) -> BreakerOut:
    await get_row(rt, t.targets, target_id, "target")
    await breaker.reset(rt.engine, target_id, now())
    await record(rt.engine, who, "target", target_id, "breaker_reset")
    await rt.dispatcher.notify()
    return _breaker_out(await get_row(rt, t.targets, target_id, "target"))
