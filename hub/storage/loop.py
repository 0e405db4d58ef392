"""The scheduled job of the worker (embedded worker, or every `hub worker`): due fetches, resyncs, and the
provider subscriptions kept alive. Safe with several workers: feeds and subscriptions are claimed by
compare-and-set. Also the background jobs a notification starts (:data:`JOBS`)."""

from __future__ import annotations

import asyncio
import logging
import time

import sqlalchemy as sa

from hub.db import tables as t
from hub.runtime import Runtime
from hub.storage.cursors import release_leases, request_resyncs
from hub.storage.fetch import JOB as FETCH_JOB
from hub.storage.fetch import fetch_job, run_fetches
from hub.storage.providers import PROVIDERS
from hub.storage.session import storage_settings
from hub.storage.subscriptions import JOB as SUBSCRIPTION_JOB
from hub.storage.subscriptions import maintain_subscriptions, set_gauges

log = logging.getLogger("hub.storage")


async def subscription_job(rt: Runtime, source_id: str) -> None:
    await maintain_subscriptions(rt, source_id)


JOBS = {FETCH_JOB: fetch_job, SUBSCRIPTION_JOB: subscription_job}


async def fetching_sources(rt: Runtime) -> list[str]:
    s = t.sources
    async with rt.engine.connect() as conn:
        ids = [r[0] for r in await conn.execute(sa.select(s.c.id).where(s.c.connector.in_(tuple(PROVIDERS))))]
    out = []
    for sid in ids:
        source = await rt.cache.source(sid)
        if source is None or not source.enabled:
            continue
        try:
            if storage_settings(source).fetch_changes:
                out.append(sid)
        except ValueError:
            continue
    return out


async def storage_pass(rt: Runtime) -> None:
    now = time.time()
    resync = rt.settings.storage_resync_interval
    if resync > 0:
        await request_resyncs(rt.engine, await fetching_sources(rt), now - resync, now)
    await run_fetches(rt)
    await maintain_subscriptions(rt)
    async with rt.engine.connect() as conn:
        await set_gauges(conn, rt.metrics, time.time())


async def run_storage(rt: Runtime) -> None:
    """Run :func:`storage_pass` every HUB_STORAGE_INTERVAL seconds until cancelled."""
    if rt.settings.is_sqlite:  # this worker is the only one: what a stop interrupted goes on now
        try:
            if released := await release_leases(rt.engine):
                log.warning("resuming fetches interrupted by a stop", extra={"count": released})
        except Exception:
            log.exception("could not release the storage leases; they run out by themselves")
    while True:
        try:
            await storage_pass(rt)
        except Exception:
            log.exception("the storage pass failed; trying again at the next one")
        await asyncio.sleep(rt.settings.storage_interval)
