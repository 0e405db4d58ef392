"""The API side of scaled mode: wake arq workers after a commit; the database already holds the work.

A notify never blocks nor fails an ingest: the enqueue runs in the background, coalesced (one in flight
per process, plus one more if anything was committed meanwhile). If Redis is down the workers' sweeper
finds the due deliveries in the database anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import unquote

from arq.connections import ArqRedis, RedisSettings, create_pool

from hub.delivery.ratelimit import RedisRateLimiter
from hub.runtime import Runtime

log = logging.getLogger("hub.scaled")
QUEUE = "hub:queue"
DRAIN = "drain"


def serialize(job: dict[str, Any]) -> bytes:
    return json.dumps(job, separators=(",", ":"), default=str).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def redis_settings(url: str, password: str = "") -> RedisSettings:
    """arq's settings for ``url``; ``password`` (HUB_REDIS_PASSWORD) may hold any character, a password in the
    URL must be percent-encoded (arq's own parser would keep %40 as it is)."""
    settings = RedisSettings.from_dsn(url)
    settings.username = unquote(settings.username) if settings.username else None
    settings.password = password or (unquote(settings.password) if settings.password else None)
    settings.conn_timeout = 2
    settings.conn_retries = 1
    settings.conn_retry_delay = 0
    return settings


async def connect(url: str, password: str = "") -> ArqRedis:
    return await create_pool(
        redis_settings(url, password), job_serializer=serialize, job_deserializer=deserialize, default_queue_name=QUEUE
    )


class ArqDispatcher:
    """Enqueues ``drain`` jobs: at most one enqueue in flight, and never a notify forgotten."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self._again = False
        self._task: asyncio.Task[None] | None = None

    async def notify(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._enqueue_loop())

    async def _enqueue_loop(self) -> None:
        while True:
            self._again = False
            try:
                await asyncio.wait_for(self.redis.enqueue_job(DRAIN, _queue_name=QUEUE), timeout=2)
            except Exception as exc:  # Redis away: the sweeper will find the work in the database
                log.warning("could not enqueue a drain job", extra={"cause": f"{type(exc).__name__}: {exc}"})
                return
            if not self._again:
                return

    async def submit(self, function: str, job_id: str) -> None:
        """Run a background job (e.g. a bulk retry) on some worker."""
        await self.redis.enqueue_job("run_job", function, job_id, _queue_name=QUEUE)


async def attach_arq(rt: Runtime) -> ArqDispatcher:
    """Wire a process of the scaled mode: dispatcher, shared rate limiter, readiness probe."""
    redis = await connect(rt.settings.redis_url, rt.settings.redis_password)
    dispatcher = ArqDispatcher(redis)
    rt.dispatcher = dispatcher
    rt.ratelimiter = RedisRateLimiter(redis)
    rt.readiness_probes["redis"] = redis.ping
    rt.closers.append(redis.aclose)
    rt.background = dispatcher.submit
    return dispatcher
