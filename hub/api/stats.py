"""Counts for the console's overview: events, deliveries, failures and dead letters over the last hour or
day, in buckets; the dead letters a filter matches; each source's last event.

Every query reads a range of a primary key or an index: ids are time-ordered (``hub.ids``), so "created
since T" is ``id >= <prefix>_<T in ns>``; a delivery's ``(status, next_attempt_at)`` index finds the
unfinished ones. Nothing scans a whole table on SQLite or Postgres.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hub.api.common import IsoDateTime, ReadKey, RuntimeDep, iso
from hub.api.operations import utc
from hub.api.text_guard import TextGuardRoute
from hub.db import tables as t
from hub.delivery.bulk import DeadLetterFilter, matching

router = APIRouter(prefix="/api/v1", tags=["operations"], route_class=TextGuardRoute)

Window = Literal["1h", "1d"]
# window -> (bucket width in seconds, number of buckets)
WINDOWS: dict[str, tuple[int, int]] = {"1h": (60, 60), "1d": (900, 96)}
# an event's id is made when its batch is written, at most this long after it was received
ID_MARGIN = 300.0
NOW_STATUSES = ("dead", "failed", "pending", "sending")  # read off the (status, next_attempt_at) index


class Bucket(BaseModel):
    start: str = Field(description="Start of the bucket (ISO 8601, UTC).")
    events: int = Field(description="Events received.")
    delivered: int = Field(description="Deliveries that succeeded (posts created).")
    failures: int = Field(description="Failed attempts: answers to retry, dead letters, mapping failures.")
    dead: int = Field(description="Deliveries that became dead letters (retries exhausted, or mapping failed).")


COUNTED = ("events", "delivered", "failures", "dead")


class Totals(BaseModel):
    events: int
    delivered: int
    failures: int
    dead: int
    events_per_second: float = Field(description="Events received per second, averaged over the window.")
    delivered_per_second: float = Field(description="Deliveries per second, averaged over the window.")


class SourceActivity(BaseModel):
    source_id: str
    last_event_id: str | None = Field(description="The source's most recent event, if it has one.")
    last_event_type: str | None
    last_event_at: str | None


class StatsOut(BaseModel):
    window: Window
    bucket_seconds: int
    start: str
    end: str
    buckets: list[Bucket] = Field(description="Oldest first; every bucket of the window, zeros included.")
    totals: Totals
    dead_letters: int = Field(description="Dead letters now (dead or failed deliveries), whenever they died.")
    pending: int = Field(description="Deliveries waiting to be sent now (pending or sending).")
    sources: list[SourceActivity] = Field(description="Each source's last event.")


class CountOut(BaseModel):
    count: int


def id_floor(prefix: str, ts: float) -> str:
    """The smallest id ``hub.ids.new_id(prefix)`` can make at or after ``ts``."""
    return f"{prefix}_{max(int(ts * 1e9), 0):016x}"


def _bucket(column: Any, start: float, width: int, dialect: str) -> Any:
    """The bucket number of a timestamp at or after ``start`` (floor: Postgres rounds a cast)."""
    offset = (column - start) / float(width)
    return sa.func.floor(offset) if dialect == "postgresql" else sa.cast(offset, sa.Integer)


async def _counts(conn: Any, start: float, width: int, dialect: str) -> dict[int, dict[str, int]]:
    e, a = t.events, t.attempts
    by: dict[int, dict[str, int]] = {}

    def add(bucket: Any, name: str, n: int) -> None:
        slot = by.setdefault(int(bucket), {})
        slot[name] = slot.get(name, 0) + int(n)

    eb = _bucket(e.c.received_at, start, width, dialect).label("b")
    events = (
        sa.select(eb, sa.func.count())
        .where(e.c.id >= id_floor("evt", start - ID_MARGIN), e.c.received_at >= start)
        .group_by(eb)
    )
    for bucket, n in await conn.execute(events):
        add(bucket, "events", n)
    ab = _bucket(a.c.started_at, start, width, dialect).label("b")
    # an attempt's row is written after it started: ids from the window's start hold every attempt in it
    attempts = (
        sa.select(ab, a.c.outcome, sa.func.count())
        .where(a.c.id >= id_floor("att", start), a.c.started_at >= start)
        .group_by(ab, a.c.outcome)
    )
    for bucket, outcome, n in await conn.execute(attempts):
        if outcome == "delivered":
            add(bucket, "delivered", n)
        else:
            add(bucket, "failures", n)
        if outcome in ("dead", "failed"):
            add(bucket, "dead", n)
    return by


async def _sources(conn: Any) -> list[SourceActivity]:
    e, s = t.events, t.sources
    last = (
        sa.select(e.c.id)
        .where(e.c.source_id == s.c.id)
        .order_by(e.c.received_at.desc(), e.c.id.desc())
        .limit(1)
        .correlate(s)
        .scalar_subquery()
    )
    rows = (await conn.execute(sa.select(s.c.id, last.label("last_id")).order_by(s.c.id))).all()
    ids = [r.last_id for r in rows if r.last_id]
    found = {}
    if ids:
        q = sa.select(e.c.id, e.c.type, e.c.received_at).where(e.c.id.in_(ids))
        found = {r.id: r for r in await conn.execute(q)}
    out = []
    for r in rows:
        ev = found.get(r.last_id)
        out.append(
            SourceActivity(
                source_id=r.id,
                last_event_id=ev.id if ev else None,
                last_event_type=ev.type if ev else None,
                last_event_at=iso(ev.received_at) if ev else None,
            )
        )
    return out


@router.get("/stats", response_model=StatsOut, summary="Counts over the last hour or day, for the overview")
async def stats(
    rt: RuntimeDep,
    _: ReadKey,
    window: Window = Query("1h", description="`1h`: 60 buckets of a minute; `1d`: 96 buckets of 15 minutes."),
) -> StatsOut:
    """Events received, deliveries made, failed attempts and new dead letters per bucket (from hub's own
    tables), their totals and rates, the dead letters and pending deliveries now, and each source's last
    event."""
    width, count = WINDOWS[window]
    end = (int(time.time()) // width + 1) * width  # the current bucket is the last one
    start = float(end - width * count)
    dialect = rt.engine.dialect.name
    d = t.deliveries
    async with rt.engine.connect() as conn:
        by = await _counts(conn, start, width, dialect)
        unfinished = sa.select(d.c.status, sa.func.count()).where(d.c.status.in_(NOW_STATUSES)).group_by(d.c.status)
        now_counts: dict[str, int] = {status: int(n) for status, n in await conn.execute(unfinished)}
        sources = await _sources(conn)
    buckets = [
        Bucket(start=iso(start + i * width) or "", **{k: by.get(i, {}).get(k, 0) for k in COUNTED})
        for i in range(count)
    ]
    sums = {k: sum(getattr(b, k) for b in buckets) for k in COUNTED}
    span = float(width * count)
    return StatsOut(
        window=window,
        bucket_seconds=width,
        start=iso(start) or "",
        end=iso(float(end)) or "",
        buckets=buckets,
        totals=Totals(
            **sums,
            events_per_second=round(sums["events"] / span, 4),
            delivered_per_second=round(sums["delivered"] / span, 4),
        ),
        dead_letters=int(now_counts.get("dead", 0)) + int(now_counts.get("failed", 0)),
        pending=int(now_counts.get("pending", 0)) + int(now_counts.get("sending", 0)),
        sources=sources,
    )


@router.get(
    "/dead-letters/count",
    response_model=CountOut,
    summary="How many dead letters a filter matches (what a bulk retry of it would send again)",
)
async def count_dead_letters(
    rt: RuntimeDep,
    _: ReadKey,
    source_id: str | None = Query(None, description="Only deliveries of this source's events."),
    target_id: str | None = Query(None, description="Only deliveries to this target."),
    since: IsoDateTime | None = Query(None, description="Created at or after (ISO 8601; UTC without a zone)."),
    until: IsoDateTime | None = Query(None, description="Created before (ISO 8601; UTC without a zone)."),
    error_contains: str | None = Query(None, description="A substring of the last error, in any case."),
) -> CountOut:
    """The same filter as `GET /api/v1/dead-letters` and `POST /api/v1/deliveries/bulk-retry`, counted:
    the console names this number before a bulk retry."""
    f = DeadLetterFilter(
        source_id=source_id,
        target_id=target_id,
        since=utc(since).timestamp() if since else None,
        until=utc(until).timestamp() if until else None,
        error_contains=error_contains,
    )
    cond = matching(f)
    async with rt.engine.connect() as conn:
        n = await conn.scalar(sa.select(sa.func.count()).select_from(t.deliveries).where(cond))
    return CountOut(count=int(n or 0))
