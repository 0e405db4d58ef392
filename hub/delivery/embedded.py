"""The worker of the embedded default (in `hub serve`'s delivery process, or in the API process): polls the
database, woken early by ingest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from hub.db import tables as t
from hub.delivery.claim import claim_due, next_due_at
from hub.delivery.engine import process_batch, process_rows
from hub.delivery.retention import run_retention
from hub.ingest.handoff import LeasedDelivery
from hub.runtime import Runtime
from hub.storage.loop import run_storage

log = logging.getLogger("hub.worker")
MAX_BATCH = 50
MAX_YIELD = 0.5  # while ingest is bursting, still claim at least this often


class EmbeddedWorker:
    """Claims due deliveries while it has free slots and processes them in background tasks."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._wake = asyncio.Event()
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._storage: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_claim = 0.0

    async def notify(self) -> None:
        self._wake.set()

    async def recover(self) -> int:
        """On SQLite this worker is the only one: whatever was being sent when the process died is due again.

        On a shared Postgres other processes may be sending right now: their leases decide instead.
        """
        if not self.rt.settings.is_sqlite:
            return 0
        d = t.deliveries
        async with self.rt.engine.begin() as conn:
            res = await conn.execute(
                sa.update(d).where(d.c.status == "sending").values(status="pending", lease_until=None)
            )
        if res.rowcount:
            log.warning("resuming deliveries interrupted by a stop", extra={"count": res.rowcount})
        return int(res.rowcount)

    def reserve(self, wanted: int) -> int:
        """Slots for deliveries the next ingest commit hands over (hub/ingest/handoff.py)."""
        if self._stopping:
            return 0
        n = max(0, min(wanted, self.rt.settings.worker_concurrency - self._active))
        self._active += n
        return n

    def hand(self, deliveries: list[LeasedDelivery], reserved: int) -> None:
        """Deliveries inserted leased for us: sent at once, without a claim or a load."""
        unused = reserved - len(deliveries)
        if unused:
            self._active -= unused
            self._wake.set()
        if deliveries and not self._stopping:  # stopping: they stay leased, due again at the next start
            self._spawn(len(deliveries), lambda release: process_rows(self.rt, deliveries, release))

    def start(self) -> None:
        self.rt.ingest.hand_to(self, self.rt.settings.delivery_lease)
        self._runner = asyncio.create_task(self._run(), name="hub-embedded-worker")
        self._retention = asyncio.create_task(run_retention(self.rt), name="hub-retention")
        self._storage = asyncio.create_task(run_storage(self.rt), name="hub-storage")  # issue 8

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in (self._runner, self._retention, self._storage):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.rt.settings.delivery_timeout + 1)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before claiming, so a notify during the claim is not lost
            if self.rt.ingest.under_pressure() and time.monotonic() - self._last_claim < MAX_YIELD:
                await asyncio.sleep(0.005)  # acknowledging webhooks first: deliveries wait, durably, in the db
                continue
            try:
                claimed = await self._claim()
            except Exception:
                log.exception("claiming deliveries failed; retrying shortly")
                await asyncio.sleep(1)
                continue
            if claimed:
                continue
            await self._sleep()

    async def _claim(self) -> int:
        concurrency = self.rt.settings.worker_concurrency
        free = concurrency - self._active
        if free <= 0:
            return 0
        now = time.time()
        self._last_claim = time.monotonic()
        lease = now + self.rt.settings.delivery_lease
        ids = await claim_due(self.rt.autocommit, min(free, MAX_BATCH), lease, now, self.rt.sqlite, self.rt.pg)
        if ids:
            self._active += len(ids)
            self._spawn(len(ids), lambda release: process_batch(self.rt, ids, release))
        return len(ids)

    def _spawn(self, held: int, run: Callable[[Callable[[int], None]], Awaitable[None]]) -> None:
        task = asyncio.create_task(self._process(held, run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, held: int, run: Callable[[Callable[[int], None]], Awaitable[None]]) -> None:
        """``run(release)`` processes ``held`` deliveries whose slots are counted in ``_active``: claimed
        ones (loaded first) or handed ones."""

        def release(n: int) -> None:  # part of the batch is done, the rest waits for a slow mapping
            nonlocal held
            held -= n
            self._active -= n
            self._wake.set()

        try:
            await run(release)
        except Exception:
            log.exception("processing a batch failed; its leases will expire and it will be retried")
        finally:
            release(held)

    async def _sleep(self) -> None:
        timeout = self.rt.settings.poll_interval
        if self._active < self.rt.settings.worker_concurrency:
            try:
                async with self.rt.engine.connect() as conn:
                    due = await next_due_at(conn)
            except Exception:
                due = None
            # a due time already past means the delivery waits behind an earlier one of its thread:
            # the end of that one wakes us.
            if due is not None and due > time.time():
                timeout = min(timeout, due - time.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.005))
