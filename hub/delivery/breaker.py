"""A circuit breaker per target, kept in the database so every worker sees the same state.

closed ──N consecutive failures──▶ open ──cooldown──▶ half_open (one probe) ──ok──▶ closed
                                     ▲                    │ failure
                                     └────────────────────┘
open for longer than ``disable_after`` ──▶ disabled (deliveries wait, nothing is dropped) until a reset.
A target whose webhook URL answers 404 or 410 (gone) is disabled at once, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.db import tables as t

DISABLED_RECHECK = 3600.0
PROBE_WAIT = 1.0


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int
    cooldown: float
    disable_after: float


@dataclass(frozen=True)
class BreakerState:
    state: str
    failures: int
    opened_at: float | None
    until: float | None


_tg = t.targets
_STATES = sa.select(
    _tg.c.id, _tg.c.breaker_state, _tg.c.consecutive_failures, _tg.c.breaker_opened_at, _tg.c.breaker_until
).where(_tg.c.id.in_(sa.bindparam("ids", expanding=True)))  # built once


async def load_states(engine: AsyncEngine, target_ids: set[str]) -> dict[str, BreakerState]:
    async with engine.connect() as conn:
        return {
            r.id: BreakerState(r.breaker_state, r.consecutive_failures, r.breaker_opened_at, r.breaker_until)
            for r in await conn.execute(_STATES, {"ids": sorted(target_ids)})
        }


async def admit(
    engine: AsyncEngine, target_id: str, st: BreakerState, policy: BreakerPolicy, now: float
) -> float | None:
    """None when a send to the target may go now; else the time to try again."""
    tg = t.targets
    if st.state == "closed":
        return None
    if st.state == "disabled":
        return now + DISABLED_RECHECK
    if st.until is not None and now < st.until:
        return st.until
    if st.state == "open" and st.opened_at is not None and now - st.opened_at >= policy.disable_after:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(tg)
                .where(tg.c.id == target_id, tg.c.breaker_state == "open")
                .values(
                    breaker_state="disabled",
                    breaker_until=None,
                    disabled_reason="failing for longer than HUB_BREAKER_DISABLE_AFTER",
                )
            )
        return now + DISABLED_RECHECK
    # cooldown over (or a probe was lost): exactly one worker wins the probe
    async with engine.begin() as conn:
        won = await conn.execute(
            sa.update(tg)
            .where(tg.c.id == target_id, tg.c.breaker_state == st.state, tg.c.breaker_until == st.until)
            .values(breaker_state="half_open", breaker_until=now + policy.cooldown)
        )
    return None if won.rowcount == 1 else now + PROBE_WAIT


async def observe(engine: AsyncEngine, target_id: str, success: bool, policy: BreakerPolicy, now: float) -> None:
    """Count a send's outcome: a success closes the breaker, repeated failures open it."""
    tg = t.targets
    async with engine.begin() as conn:
        if success:  # the caller skips this write when the target has nothing to reset
            await conn.execute(
                sa.update(tg)
                .where(tg.c.id == target_id, tg.c.breaker_state != "disabled")  # only a gone URL or a reset decide that
                .values(breaker_state="closed", consecutive_failures=0, breaker_opened_at=None, breaker_until=None)
            )
            return
        row = (
            await conn.execute(
                sa.update(tg)
                .where(tg.c.id == target_id)
                .values(consecutive_failures=tg.c.consecutive_failures + 1)
                .returning(tg.c.consecutive_failures, tg.c.breaker_state, tg.c.breaker_opened_at)
            )
        ).first()
        if row is None:
            return
        if row.breaker_state == "half_open":
            await conn.execute(
                sa.update(tg)
                .where(tg.c.id == target_id)
                .values(breaker_state="open", breaker_until=now + policy.cooldown)
            )
        elif row.breaker_state == "closed" and row.consecutive_failures >= policy.threshold:
            await conn.execute(
                sa.update(tg)
                .where(tg.c.id == target_id)
                .values(breaker_state="open", breaker_opened_at=now, breaker_until=now + policy.cooldown)
            )


async def disable(engine: AsyncEngine, target_id: str, now: float, reason: str) -> None:
    """The target said it is gone (404/410 of a webhook URL): hold its deliveries until someone resets
    the breaker; ``reason`` is shown with the target and its breaker."""
    tg = t.targets
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(tg)
            .where(tg.c.id == target_id)
            .values(breaker_state="disabled", breaker_opened_at=now, breaker_until=None, disabled_reason=reason)
        )


async def reset(engine: AsyncEngine, target_id: str, now: float) -> bool:
    """Close the breaker and make the target's waiting deliveries due now."""
    tg = t.targets
    async with engine.begin() as conn:
        res = await conn.execute(
            sa.update(tg)
            .where(tg.c.id == target_id)
            .values(
                breaker_state="closed",
                consecutive_failures=0,
                breaker_opened_at=None,
                breaker_until=None,
                disabled_reason=None,
            )
        )
        await make_waiting_due(conn, target_id, now)
    return bool(res.rowcount)


async def make_waiting_due(conn: AsyncConnection, target_id: str, now: float) -> None:
    """A target may send again (breaker reset, target enabled): what waited for it is due now."""
    d = t.deliveries
    await conn.execute(
        sa.update(d)
        .where(d.c.target_id == target_id, d.c.status == "pending", d.c.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
