"""Retry schedule: pure functions, the random source passed in."""

from __future__ import annotations

import random
from collections.abc import Sequence

# Delay before each retry, in the spirit of Svix, extended past three days:
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h, 24 h  (≈ 86 h after the first attempt).
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 50400, 72000, 86400)
JITTER = 0.1


def next_delay(
    attempts_made: int, schedule: Sequence[float] | None, rng: random.Random, retry_after: float | None = None
) -> float | None:
    """Seconds to wait before the next attempt, or None when the schedule is exhausted.

    ``attempts_made`` counts attempts already made (≥ 1). Jitter is ±10 %; a Retry-After from the
    target is honoured when it asks for longer.
    """
    steps = DEFAULT_SCHEDULE if schedule is None else tuple(schedule)
    index = attempts_made - 1
    if index >= len(steps):
        return None
    base = float(steps[index])
    delay = base * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def horizon(schedule: Sequence[float] | None = None) -> float:
    """Seconds from the first attempt to the last retry, without jitter."""
    return float(sum(DEFAULT_SCHEDULE if schedule is None else schedule))
