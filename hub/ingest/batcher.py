"""Group commit for ingest: concurrent webhooks share one transaction (and one fsync).

Each request waits for the commit of the batch holding its event, so a 202 still means "stored".
Batches form on their own under load: while one commits, the next fills up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config_cache import RouteInfo
from hub.delivery.pg_path import PgPath
from hub.ingest.handoff import Lease, Receiver
from hub.ingest.pg_store import store_events_pg
from hub.ingest.sqlite_writer import SqliteIngestWriter
from hub.ingest.store import NewEvent, StoredEvent, store_events

log = logging.getLogger("hub.ingest")
MAX_BATCH = 500
PRESSURE_BATCH = 4  # a batch this big means webhooks are arriving faster than one at a time
PRESSURE_WINDOW = 0.01
HAND_OFF_BELOW = 16  # a batch this big is a burst: acknowledgements first, its deliveries wait to be claimed
STOP_TIMEOUT = 10.0
SYSTEMIC_FAILURES = 3

_Item = tuple[NewEvent, Sequence[RouteInfo], "asyncio.Future[StoredEvent]"]
_Group = list[_Item]  # the events of one request: always in the same transaction


StoreBatch = Callable[[Sequence[tuple[NewEvent, Sequence[RouteInfo]]], Lease | None], Awaitable[list[StoredEvent]]]


def batch_store_for(
    engine: AsyncEngine, pg: PgPath | None = None
) -> tuple[StoreBatch, Callable[[], None], SqliteIngestWriter | None]:
    """SQLite: a dedicated sqlite3 writer thread, which can hand deliveries to the worker. Postgres: plain
    asyncpg (``pg``), else the async engine. Returns (store, close, the SQLite writer)."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        writer = SqliteIngestWriter(engine.url.database)
        return writer.store_events, writer.close, writer
    if pg is not None:
        on_pg = pg

        async def store_pg(
            batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None
        ) -> list[StoredEvent]:
            return await store_events_pg(on_pg, batch)

        return store_pg, lambda: None, None

    async def store(batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None) -> list[StoredEvent]:
        return await store_events(engine, batch)

    return store, lambda: None, None


class IngestBatcher:
    def __init__(self, engine: AsyncEngine, max_batch: int = MAX_BATCH, pg: PgPath | None = None) -> None:
        self._store, self._close, self.sqlite_writer = batch_store_for(engine, pg)
        self._receiver: Receiver | None = None
        self._lease_seconds = 0.0
        self._max = max_batch
        self._last_busy = 0.0
        self._pending: list[_Group] = []
        self._inflight: list[_Group] = []
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def under_pressure(self) -> bool:
        """True while webhooks arrive in bursts: the embedded worker then yields the CPU to ingest."""
        return (
            sum(len(g) for g in self._pending) >= PRESSURE_BATCH or time.monotonic() - self._last_busy < PRESSURE_WINDOW
        )

    def hand_to(self, receiver: Receiver, lease_seconds: float) -> None:
        """Insert what ``receiver`` has room for already leased and hand it over (hub/ingest/handoff.py);
        only where the SQLite writer stores (on Postgres, workers claim)."""
        if self.sqlite_writer is not None:
            self._receiver, self._lease_seconds = receiver, lease_seconds

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hub-ingest-writer")

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Store what was received, then stop: a request waiting for its commit gets its answer."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for _, _, fut in [
            item for group in (*self._inflight, *self._pending) for item in group
        ]:  # only after the timeout: 503, the provider retries
            if not fut.done():
                fut.set_exception(RuntimeError("hub is shutting down"))
        await asyncio.to_thread(self._close)  # the SQLite writer thread may still be finishing a commit

    async def store(self, ev: NewEvent, routes: Sequence[RouteInfo]) -> StoredEvent:
        return (await self.store_many([(ev, routes)]))[0]

    async def store_many(self, items: Sequence[tuple[NewEvent, Sequence[RouteInfo]]]) -> list[StoredEvent]:
        """Store the events of one request together: all in one transaction, or none."""
        if self._task is None or self._task.done():  # not started (or stopped): store on our own
            return await self._store(items, None)
        loop = asyncio.get_running_loop()
        group: _Group = [(ev, routes, loop.create_future()) for ev, routes in items]
        self._pending.append(group)
        self._wake.set()
        return [await fut for _, _, fut in group]

    def _next_batch(self) -> list[_Group]:
        """Whole groups, up to the batch size (a group bigger than that goes alone)."""
        size, count = 0, 0
        for group in self._pending:
            if count and size + len(group) > self._max:
                break
            size, count = size + len(group), count + 1
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._next_batch()
                self._inflight = batch
                await self._flush(batch)
                self._inflight = []
            if self._stopping:
                return

    async def _flush(self, batch: list[_Group]) -> bool:
        """Store a batch; True when it was committed."""
        items = [item for group in batch for item in group]
        if len(items) >= PRESSURE_BATCH:
            self._last_busy = time.monotonic()
        receiver, reserved = self._receiver, 0
        if receiver is not None and len(items) < HAND_OFF_BELOW:
            reserved = receiver.reserve(sum(len(routes) for _, routes, _ in items))
        now = time.time()
        lease = Lease(reserved, now + self._lease_seconds, now) if reserved else None
        try:
            results = await self._store([(ev, routes) for ev, routes, _ in items], lease)
        except Exception as exc:  # nothing was committed
            if receiver is not None:
                receiver.hand([], reserved)
            if len(batch) > 1:
                await self._one_by_one(batch, exc)
                return False
            log.exception("storing an event failed", extra={"source_id": items[0][0].source_id})
            for _, _, fut in items:
                if not fut.done():
                    fut.set_exception(exc)
            return False
        for (_, _, fut), result in zip(items, results, strict=True):
            if not fut.done():
                fut.set_result(result)
        if receiver is not None:  # after the answers: their tasks run first
            receiver.hand([h for r in results for h in r.handed], reserved)
        return True

    async def _one_by_one(self, batch: list[_Group], exc: Exception) -> None:
        """One bad request must not fail its neighbours: store them one by one. Several failures in a row
        mean the database itself is failing: answer the rest at once (503) instead of one timeout each."""
        failures = 0
        for i, group in enumerate(batch):
            failures = 0 if await self._flush([group]) else failures + 1
            if failures >= SYSTEMIC_FAILURES:
                for _, _, fut in [item for rest in batch[i + 1 :] for item in rest]:
                    if not fut.done():
                        fut.set_exception(exc)
                return
