"""Liveness, readiness and metrics."""

from __future__ import annotations

import time
from typing import get_args

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api.common import RuntimeDep
from hub.api.deliveries import DeliveryStatus
from hub.db import tables as t
from hub.metrics import Merged, merge
from hub.storage.subscriptions import set_gauges as storage_gauges

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database (and Redis when scaled) answer")
async def readyz(rt: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with rt.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in rt.readiness_probes.items():
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )


BREAKER_LEVEL = {"closed": 0, "half_open": 1, "open": 2, "disabled": 3}
STATUSES = get_args(DeliveryStatus)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    """This process's counters (with those of `hub serve`'s delivery process), plus gauges read from the
    database (true across all workers)."""
    d, tg = t.deliveries, t.targets
    async with rt.engine.connect() as conn:
        by_status: dict[str, int] = dict(
            (await conn.execute(sa.select(d.c.status, sa.func.count()).group_by(d.c.status))).all()
        )
        breakers = (await conn.execute(sa.select(tg.c.id, tg.c.breaker_state))).all()
        await storage_gauges(conn, rt.metrics, time.time())  # provider subscriptions and fetches (hub/storage)
    m = rt.metrics
    for status in STATUSES:
        m.deliveries_by_status.labels(status).set(by_status.get(status, 0))
    m.queue_depth.set(by_status.get("pending", 0) + by_status.get("sending", 0))
    m.breaker_state.clear()
    for target_id, state in breakers:
        m.breaker_state.labels(target_id).set(BREAKER_LEVEL.get(state, 0))
    if not rt.metric_sources:
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
    theirs = [family for source in rt.metric_sources for family in await source()]  # the delivery process's
    return Response(generate_latest(Merged(merge(m.registry.collect(), theirs))), media_type=CONTENT_TYPE_LATEST)
