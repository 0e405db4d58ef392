"""Background jobs (bulk retry). Embedded: asyncio tasks in the process. Scaled: arq jobs on workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hub.delivery.bulk import run_bulk_retry
from hub.runtime import Runtime
from hub.storage.loop import JOBS as STORAGE_JOBS

log = logging.getLogger("hub.jobs")


async def bulk_retry_and_wake(rt: Runtime, job_id: str) -> None:
    await run_bulk_retry(rt.engine, job_id)
    await rt.dispatcher.notify()


JOBS: dict[str, Callable[[Runtime, str], Coroutine[Any, Any, None]]] = {
    "bulk_retry": bulk_retry_and_wake,
    **STORAGE_JOBS,  # fetch-on-notify and subscription jobs (hub/storage, issue 8)
}


def local_runner(rt: Runtime) -> Callable[..., Awaitable[None]]:
    tasks: set[asyncio.Task[None]] = set()

    async def submit(function: str, job_id: str) -> None:
        task = asyncio.create_task(JOBS[function](rt, job_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return submit
