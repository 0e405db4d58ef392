"""What every long-running hub process does for speed: the fastest loop at hand, a calmer cyclic GC."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any


def run_fast(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it is installed (uvicorn[standard] brings it), the loop `hub serve` runs on too:
    a worker's time goes mostly to its sockets (the database, Redis, the targets)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, PyPy
        asyncio.run(main)
        return
    uvloop.run(main)


# The young generation is collected every 50,000 allocations instead of 700: a webhook or a delivery
# allocates a few thousand short-lived objects, nearly none in cycles; at the default a collection ran
# every few of them (~10 % of the CPU).
GC_THRESHOLDS = (50_000, 20, 20)


def settle_gc() -> None:
    """Once a process has started: move everything start-up built out of the cyclic GC's sight (later
    collections look at what requests allocate only) and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
