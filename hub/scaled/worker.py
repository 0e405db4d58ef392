"""`hub worker`: an arq worker that drains due deliveries from the database in batches.

Jobs carry no payload: ``drain`` claims a batch of due deliveries (atomically, SKIP LOCKED), sends them,
records the outcomes, and loops while there is work. A drain's first full batch enqueues another drain, so
other workers join in. A sweeper in every worker enqueues a drain whenever the database has due work,
which covers Redis restarts, FLUSHALL, lost jobs, expired leases and retries falling due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from arq.worker import Worker, func
from redis.exceptions import RedisError

from hub.config import ConfigError, Settings
from hub.delivery.claim import claim_due, next_due_at
from hub.delivery.engine import process_batch
from hub.delivery.jobs import JOBS
from hub.delivery.retention import run_retention
from hub.fastloop import settle_gc
from hub.metrics import Metrics
from hub.runtime import Runtime, build_runtime, check_secret_key
from hub.scaled.dispatch import DRAIN, QUEUE, attach_arq, deserialize, redis_settings, serialize
from hub.storage.loop import run_storage

log = logging.getLogger("hub.worker")
DRAIN_JOBS_PER_WORKER = 2
DRAIN_SECONDS = 20.0


def batch_size(settings: Settings) -> int:
    return max(1, settings.worker_concurrency // DRAIN_JOBS_PER_WORKER)


async def drain(ctx: dict[str, Any]) -> int:
    """Claim and send due deliveries until none is left (or for DRAIN_SECONDS, then hand over)."""
    rt: Runtime = ctx["rt"]
    slots: asyncio.Semaphore = ctx["drain_slots"]
    if slots.locked():
        return 0  # the running drains loop until nothing is due: in-flight sends stay ≤ worker_concurrency
    async with slots:
        return await _drain(rt)


async def _drain(rt: Runtime) -> int:
    size = batch_size(rt.settings)
    started = time.monotonic()
    sent = 0
    asked = False
    while True:
        now = time.time()
        ids = await claim_due(rt.autocommit, size, now + rt.settings.delivery_lease, now, pg=rt.pg)
        if not ids:
            return sent
        if len(ids) == size and not asked:
            # more is probably due: let another drain help, once (it asks for the next one itself, so
            # drains spread over every free slot; asking at each full batch only queued drains that
            # found every slot taken)
            asked = True
            await rt.dispatcher.notify()
        await process_batch(rt, ids)
        sent += len(ids)
        if time.monotonic() - started > DRAIN_SECONDS:
            await rt.dispatcher.notify()
            return sent


async def run_job(ctx: dict[str, Any], function: str, job_id: str) -> None:
    await JOBS[function](ctx["rt"], job_id)


async def _sweep(rt: Runtime) -> None:
    interval = rt.settings.sweep_interval
    while True:
        try:
            async with rt.engine.connect() as conn:
                due = await next_due_at(conn)
            if due is not None and due <= time.time():
                await rt.dispatcher.notify()
        except Exception as exc:
            log.warning("sweep failed", extra={"cause": f"{type(exc).__name__}: {exc}"})
        await asyncio.sleep(interval)


_process_metrics: Metrics | None = None


def _serve_metrics(settings: Settings, rt: Runtime) -> None:
    """One registry and one port per process: the worker loop restarts after a Redis outage, they stay."""
    global _process_metrics
    if _process_metrics is not None:
        rt.metrics = _process_metrics
        return
    _process_metrics = rt.metrics
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, registry=rt.metrics.registry)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    rt = build_runtime(settings)
    await check_secret_key(rt)
    await attach_arq(rt)
    ctx["rt"] = rt
    ctx["drain_slots"] = asyncio.Semaphore(DRAIN_JOBS_PER_WORKER)
    ctx["sweeper"] = asyncio.create_task(_sweep(rt), name="hub-sweeper")
    ctx["retention"] = asyncio.create_task(run_retention(rt), name="hub-retention")
    ctx["storage"] = asyncio.create_task(run_storage(rt), name="hub-storage")  # issue 8
    _serve_metrics(settings, rt)
    settle_gc()
    log.info("worker ready", extra={"batch": batch_size(settings)})


async def shutdown(ctx: dict[str, Any]) -> None:
    for name in ("sweeper", "retention", "storage"):
        task: asyncio.Task[None] | None = ctx.get(name)
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    rt: Runtime | None = ctx.get("rt")
    if rt:
        for closer in rt.closers:
            await closer()
        await rt.close()
    log.info("worker stopped")


def check_settings(settings: Settings) -> None:
    """Fail fast, naming the setting, before anything starts (a Worker binds signal handlers to a loop)."""
    if not settings.redis_url:
        raise ConfigError("invalid configuration: HUB_REDIS_URL: required by `hub worker`")
    if settings.is_sqlite:
        raise ConfigError("invalid configuration: HUB_DATABASE_URL: `hub worker` needs a shared Postgres database")


def build_worker(settings: Settings, handle_signals: bool = True) -> Worker:
    """An arq worker; build it inside the running loop that will run it (its SIGTERM handler lives there)."""
    check_settings(settings)
    return Worker(
        functions=[
            func(drain, name=DRAIN, keep_result=0, max_tries=3),
            func(run_job, name="run_job", keep_result=0, max_tries=5, timeout=3600),
        ],
        queue_name=QUEUE,
        redis_settings=redis_settings(settings.redis_url, settings.redis_password),
        on_startup=startup,
        on_shutdown=shutdown,
        ctx={"settings": settings},
        max_jobs=DRAIN_JOBS_PER_WORKER + 1,
        job_timeout=int(DRAIN_SECONDS + settings.delivery_timeout * 2 + 30),
        keep_result=0,
        poll_delay=0.005,
        job_serializer=serialize,
        job_deserializer=deserialize,
        handle_signals=handle_signals,
        log_results=False,
        health_check_interval=30,
    )


async def close_worker(worker: Worker) -> None:
    """Stop a worker: cancel its jobs, wait for them, then close (arq's own close re-raises the jobs'
    CancelledError and would skip the shutdown hook). An interrupted drain leaves its claims to their lease."""
    for task in worker.tasks.values():
        task.cancel()
    if worker.tasks:
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        worker.tasks.clear()
    await worker.close()


async def run_worker(settings: Settings) -> None:
    """Run until a signal stops it; when Redis goes away, wait and start the worker loop again."""
    while True:
        worker = build_worker(settings)
        try:
            await worker.async_run()
        except asyncio.CancelledError:  # SIGTERM/SIGINT: arq cancelled its main task
            await close_worker(worker)
            return
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("lost Redis; restarting the worker loop", extra={"cause": f"{type(exc).__name__}: {exc}"})
            if worker.tasks:
                await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            await shutdown(worker.ctx)
            await asyncio.sleep(1.0)
        else:
            await close_worker(worker)
            return
