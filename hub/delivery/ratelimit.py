"""Per-target rate limits (GCRA): in memory on the embedded default, shared through Redis when scaled."""

from __future__ import annotations

import time
from typing import Any, Protocol


class RateLimiter(Protocol):
    async def wait_time(self, key: str, per_second: float) -> float:
        """Take one slot; 0 when the send may go now, else the seconds to wait (nothing taken)."""
        ...


def _burst(per_second: float) -> float:
    return max(1.0, per_second)  # allow a burst of about one second's worth


class LocalRateLimiter:
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def wait_time(self, key: str, per_second: float) -> float:
        now = time.monotonic()
        interval = 1.0 / per_second
        tolerance = interval * (_burst(per_second) - 1)
        tat = max(self._tat.get(key, now), now)
        if tat - now > tolerance:
            return tat - now - tolerance
        self._tat[key] = tat + interval
        return 0.0


# GCRA in one round trip, on Redis' own clock so every worker agrees.
_GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tostring(tat - now - tolerance) end
tat = tat + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now + 1000))
return '0'
"""


class RedisRateLimiter:
    def __init__(self, redis: Any, prefix: str = "hub:ratelimit:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_GCRA)

    async def wait_time(self, key: str, per_second: float) -> float:
        interval_ms = 1000.0 / per_second
        tolerance_ms = interval_ms * (_burst(per_second) - 1)
        waited = await self._script(keys=[self._prefix + key], args=[interval_ms, tolerance_ms])
        return float(waited) / 1000.0
