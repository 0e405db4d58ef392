"""Process claimed deliveries: map the event, send the Post, record the attempt, schedule what's next."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hub.config_cache import TargetInfo
from hub.connectors.parse import ParseError, parse_payload
from hub.connectors.verify import RawRequest
from hub.db import tables as t
from hub.delivery.breaker import (
    DISABLED_RECHECK,
    PROBE_WAIT,
    BreakerPolicy,
    BreakerState,
    admit,
    disable,
    load_states,
    observe,
)
from hub.delivery.schedule import next_delay
from hub.ids import new_id
from hub.mapping.render import MappingError, applies, render_post
from hub.runtime import Runtime
from hub.targets.base import DeliveryContext, SendResult, scrub
from hub.targets.registry import get_target

log = logging.getLogger("hub.delivery")
_rng = random.Random()


@dataclass
class Outcome:
    """What to write back for one delivery."""

    delivery_id: str
    lease: float
    status: str
    attempts: int
    next_attempt_at: float
    error: str | None = None
    status_code: int | None = None
    attempt: SendResult | None = None
    started_at: float = 0.0


def _mapping_context(row: Any, payload: Any, source_name: str) -> dict[str, Any]:
    return {
        "payload": payload,
        "event": {
            "id": row.event_id,
            "type": row.type,
            "source_id": row.source_id,
            "connector": row.connector,
            "subject": row.subject,
            "received_at": row.received_at,
        },
        "source": {"id": row.source_id, "name": source_name},
    }


async def _load(rt: Runtime, ids: list[str]) -> list[Any]:
    d, e = t.deliveries, t.events
    stmt = (
        sa.select(
            d.c.id,
            d.c.event_id,
            d.c.route_id,
            d.c.target_id,
            d.c.attempts,
            d.c.lease_until,
            d.c.last_error,
            d.c.last_status_code,
            e.c.type,
            e.c.body,
            e.c.headers,
            e.c.source_id,
            e.c.connector,
            e.c.subject,
            e.c.received_at,
        )
        .join(e, e.c.id == d.c.event_id)
        .where(d.c.id.in_(ids))
    )
    async with rt.engine.connect() as conn:
        return list(await conn.execute(stmt))


@dataclass
class _BatchFlow:
    """Breaker states of the batch's targets, read once, and which targets this batch is probing."""

    states: dict[str, BreakerState]
    probing: set[str]


def policy_of(rt: Runtime) -> BreakerPolicy:
    s = rt.settings
    return BreakerPolicy(s.breaker_threshold, s.breaker_cooldown, s.breaker_disable_after)


async def _flow_wait(rt: Runtime, target: TargetInfo, flow: _BatchFlow, now: float) -> float | None:
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


async def _process_one(rt: Runtime, row: Any, flow: _BatchFlow) -> Outcome:
    now = time.time()
    attempts = row.attempts + 1

    def final(status: str, error: str) -> Outcome:
        log.warning("delivery %s", status, extra={"delivery_id": row.id, "event_id": row.event_id, "cause": error})
        result = SendResult("dead", error=error)
        return Outcome(row.id, row.lease_until, status, attempts, now, error, attempt=result, started_at=now)

    route = await rt.cache.route(row.route_id)
    target_info = await rt.cache.target(row.target_id)
    spec = rt.connectors.get(row.connector)
    target = get_target(target_info.kind) if target_info else None
    if route is None or target_info is None or target is None:
        return final("dead", "the route or target was deleted")
    if spec is None:
        return final("dead", f"connector {row.connector} is no longer registered")
    try:
        payload = parse_payload(spec, RawRequest(body=row.body, headers=row.headers))
        source = await rt.cache.source(row.source_id)
        context = _mapping_context(row, payload, source.name if source else "")
        mapping = rt.mappings.resolve(row.connector, row.type, route.mapping)
        if not applies(mapping, context):
            return Outcome(row.id, row.lease_until, "skipped", row.attempts, now, "mapping 'when' is false")
        post = render_post(mapping, context)
    except (MappingError, ParseError) as exc:
        return final("failed", f"mapping failed: {exc}")
    if not target_info.enabled:  # not an attempt: the delivery waits until the target is enabled again
        return Outcome(
            row.id, row.lease_until, "pending", row.attempts, now + DISABLED_RECHECK, "the target is disabled"
        )
    retry_at = await _flow_wait(rt, target_info, flow, now)
    if retry_at is not None:  # not an attempt: nothing was sent
        return Outcome(row.id, row.lease_until, "pending", row.attempts, retry_at, row.last_error, row.last_status_code)
    ctx = DeliveryContext(
        row.id, row.event_id, row.target_id, rt.http, rt.settings.delivery_timeout, rt.engine, rt.egress
    )
    try:
        result = await target.deliver(post, target_info.config, ctx)
    except Exception as exc:  # a target bug must not lose the delivery: retry it like a failed send
        secrets = target.secrets_of(target_info.config)
        trace = scrub("".join(traceback.format_exception(exc)), secrets)
        log.error("target %s raised", target_info.kind, extra={"delivery_id": row.id, "traceback": trace})
        result = SendResult("retry", error=scrub(f"{type(exc).__name__}: {exc}", secrets)[:500])
    st = flow.states.get(target_info.id)
    if result.outcome == "delivered" and (st is None or st.state != "closed" or st.failures):
        await observe(rt.engine, target_info.id, st, True, policy_of(rt), now)
    elif result.outcome == "retry":
        await observe(rt.engine, target_info.id, st, False, policy_of(rt), now)
    if result.outcome == "delivered":
        return Outcome(row.id, row.lease_until, "delivered", attempts, now, None, result.status_code, result, now)
    if result.outcome == "gone":  # the delivery waits with the others; a breaker reset makes them all due
        await disable(rt.engine, target_info.id, now)
        log.warning("target gone (410): disabled", extra={"target_id": target_info.id, "delivery_id": row.id})
        result.error = "HTTP 410 Gone: the target is disabled until its breaker is reset"
        return Outcome(
            row.id, row.lease_until, "pending", attempts, now + DISABLED_RECHECK, result.error, 410, result, now
        )
    if result.outcome == "retry":
        delay = next_delay(attempts, target_info.retry_schedule, _rng, result.retry_after)
        if delay is not None:
            return Outcome(
                row.id, row.lease_until, "pending", attempts, now + delay, result.error, result.status_code, result, now
            )
        result.error = f"{result.error} (retries exhausted)"
    log.warning("delivery dead", extra={"delivery_id": row.id, "event_id": row.event_id, "cause": result.error})
    return Outcome(row.id, row.lease_until, "dead", attempts, now, result.error, result.status_code, result, now)


async def _record(rt: Runtime, outcomes: list[Outcome]) -> None:
    now = time.time()
    d = t.deliveries
    update = (
        sa.update(d)
        .where(d.c.id == sa.bindparam("b_id"), d.c.status == "sending", d.c.lease_until == sa.bindparam("b_lease"))
        .values(
            status=sa.bindparam("b_status"),
            attempts=sa.bindparam("b_attempts"),
            next_attempt_at=sa.bindparam("b_next"),
            last_error=sa.bindparam("b_error"),
            last_status_code=sa.bindparam("b_code"),
            delivered_at=sa.bindparam("b_delivered"),
            lease_until=None,
            updated_at=now,
        )
    )
    params = [
        {
            "b_id": o.delivery_id,
            "b_lease": o.lease,
            "b_status": o.status,
            "b_attempts": o.attempts,
            "b_next": o.next_attempt_at,
            "b_error": o.error,
            "b_code": o.status_code,
            "b_delivered": now if o.status == "delivered" else None,
        }
        for o in outcomes
    ]
    attempt_rows = [
        {
            "id": new_id("att"),
            "delivery_id": o.delivery_id,
            "number": o.attempts,
            "started_at": o.started_at,
            "latency_ms": round(o.attempt.latency_ms, 3),
            "outcome": o.status,
            "status_code": o.attempt.status_code,
            "error": o.attempt.error,
            "response_excerpt": o.attempt.response_excerpt,
        }
        for o in outcomes
        if o.attempt is not None
    ]
    async with rt.engine.begin() as conn:
        if attempt_rows:
            await conn.execute(t.attempts.insert(), attempt_rows)
        await conn.execute(update, params)
    rt.metrics.record(outcomes)


async def process_batch(rt: Runtime, ids: list[str]) -> None:
    """Send a batch of claimed deliveries concurrently, then write every outcome in one transaction."""
    if not ids:
        return
    rows = await _load(rt, ids)
    flow = _BatchFlow(await load_states(rt.engine, {r.target_id for r in rows}), set())
    outcomes = list(await asyncio.gather(*(_process_one(rt, r, flow) for r in rows)))
    await _record(rt, outcomes)
