"""Per-target flow control for one batch: the circuit breaker and the rate limit."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hub.config_cache import TargetInfo
from hub.delivery.breaker import PROBE_WAIT, BreakerPolicy, BreakerState, admit
from hub.runtime import Runtime

log = logging.getLogger("hub.delivery")


@dataclass
class BatchFlow:
    """Breaker states of the batch's targets, read once, which targets this batch is probing, and which
    failed in this batch (so a success afterwards resets their count, whatever the snapshot said)."""

    states: dict[str, BreakerState]
    probing: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)


def policy_of(rt: Runtime) -> BreakerPolicy:
    s = rt.settings
    return BreakerPolicy(s.breaker_threshold, s.breaker_cooldown, s.breaker_disable_after)


async def flow_wait(rt: Runtime, target: TargetInfo, flow: BatchFlow, now: float) -> float | None:
    """None when the send may go now; else when to try again (breaker open, rate limit reached)."""
    st = flow.states.get(target.id)
    if st is not None and st.state != "closed":
        if target.id in flow.probing:
            return now + PROBE_WAIT
        retry_at = await admit(rt.engine, target.id, st, policy_of(rt), now)
        if retry_at is not None:
            return retry_at
        flow.probing.add(target.id)
    if target.rate_limit_per_second:
        try:
            wait = await rt.ratelimiter.wait_time(target.id, target.rate_limit_per_second)
        except Exception as exc:  # the shared limiter is unreachable: hold the send briefly, lose nothing
            log.warning("rate limiter unavailable", extra={"cause": f"{type(exc).__name__}: {exc}"})
            return now + 1.0
        if wait > 0:
            return now + wait
    return None
