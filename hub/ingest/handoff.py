"""Handing new deliveries straight to the embedded worker.

A delivery that is due at once and whose thread has nothing unfinished ahead of it is inserted already
leased (``sending``) by the ingest commit that stores its event, and given to the worker in memory with
everything it would otherwise claim and load again. The worker reserves the slots before the commit, so
a handed delivery is sent at once and its lease never runs out while it waits. The database stays the
source of truth: a handed delivery is a leased row like any claimed one, and after a crash the worker
makes it due again (``EmbeddedWorker.recover``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

STATUS, LEASE_UNTIL = 5, 8  # positions in ingest.store.DELIVERY_COLUMNS
ThreadKey = tuple[str, str]  # (target id, order key)


@dataclass(frozen=True)
class Lease:
    """Up to ``limit`` new deliveries may be inserted leased until ``until`` (those due by ``now``)."""

    limit: int
    until: float
    now: float


class LeasedDelivery(NamedTuple):
    """A delivery inserted leased, with the columns the engine loads for a claimed one (``engine._LOAD``)."""

    id: str
    event_id: str
    route_id: str
    target_id: str
    attempts: int
    retry_base: int
    lease_until: float
    last_error: str | None
    last_status_code: int | None
    order_key: str
    type: str
    body: bytes
    payload: str | None
    headers: dict[str, str]
    source_id: str
    connector: str
    subject: str | None
    received_at: float


class Receiver(Protocol):
    """The worker's side: slots reserved before a commit, deliveries handed after it."""

    def reserve(self, wanted: int) -> int: ...

    def hand(self, deliveries: list[LeasedDelivery], reserved: int) -> None: ...


def thread_keys(rows: Sequence[Sequence[object]]) -> set[ThreadKey]:
    """The threads of these rows that other deliveries can share (an order key that is the delivery's
    own id is a thread of one)."""
    return {(str(r[3]), str(r[4])) for r in rows if r[4] != r[0]}


def lease_rows(rows: list[tuple[object, ...]], busy: set[ThreadKey], lease: Lease) -> list[int]:
    """Lease up to ``lease.limit`` of these new delivery rows (``DELIVERY_COLUMNS`` values, in insertion
    order) in place; return their positions. A row is leased when it is due and no unfinished delivery
    of its thread is stored (``busy``) or comes earlier in the batch: posts of a thread stay in order."""
    leased: list[int] = []
    seen = set(busy)
    for i, row in enumerate(rows):
        key = (str(row[3]), str(row[4]))
        if key in seen:
            continue
        seen.add(key)
        if len(leased) < lease.limit and float(row[7]) <= lease.now:  # type: ignore[arg-type]
            values = list(row)
            values[STATUS], values[LEASE_UNTIL] = "sending", lease.until
            rows[i] = tuple(values)
            leased.append(i)
    return leased
