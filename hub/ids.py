"""Time-ordered identifiers: sorting ids sorts by creation time."""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last = 0


def new_id(prefix: str) -> str:
    """``prefix_`` + 16 hex digits of a strictly increasing ns clock + 8 random hex digits."""
    global _last
    with _lock:
        now = time.time_ns()
        if now <= _last:
            now = _last + 1
        _last = now
    return f"{prefix}_{now:016x}{os.urandom(4).hex()}"
