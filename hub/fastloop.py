"""Running a coroutine on the fastest loop at hand."""

from __future__ import annotations

import asyncio
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
