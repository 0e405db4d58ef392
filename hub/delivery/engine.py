"""Process claimed deliveries in stages: prepare (map the event into a Post), read the batch's thread
anchors at once, send, then record every outcome (with new anchors) in one transaction."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from hub.config_cache import RouteInfo, TargetInfo
from hub.db import tables as t
from hub.delivery.anchors import (
    ANCHOR_PG,
    ANCHOR_SQLITE,
    AnchorKey,
    NewAnchor,
    anchor_rows,
    load_anchors,
    thread_hash,
    write_anchors,
)
from hub.delivery.breaker import DISABLED_RECHECK, disable, load_states, observe
from hub.delivery.flow import BatchFlow, flow_wait, policy_of
from hub.delivery.folding import digest_post, fold, with_updates
from hub.delivery.pg_path import PlainPg
from hub.delivery.schedule import next_delay
from hub.delivery.sqlite_path import Plain
from hub.ids import new_id
from hub.mapping.context import EventForMapping
from hub.mapping.post import Mention, Post
from hub.mapping.render import MappingError, MappingTimedOut
from hub.runtime import Runtime
from hub.targets.base import DeliveryContext, SendResult, Target, ThreadAnchor, scrub
from hub.targets.registry import get_target

log = logging.getLogger("hub.delivery")
_rng = random.Random()
_T = TypeVar("_T")
SLOW_RENDER = 0.05  # seconds: deliveries whose mapping renders longer are sent apart from their batch


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
    anchor: NewAnchor | None = None  # this delivery opened its thread on the target
    mapping_version: str | None = None  # which mapping rendered it (None: not rendered this time)


@dataclass
class Prepared:
    """A delivery whose Post is rendered, ready to send."""

    row: Any
    post: Post
    target: Target
    info: TargetInfo
    mapping_version: str
    direct_to: Mention | None = None  # a direct message to this person, not the channel

    def anchor_key(self) -> AnchorKey | None:
        """Where its thread's anchor is, for the kinds that read one (reply to it, or link it)."""
        m = self.target.manifest
        if self.post.thread_key is None or m.threading == "key" or m.profile == "built-in" or self.direct_to:
            return None
        return (self.info.id, thread_hash(self.post.thread_key))


_d, _e = t.deliveries, t.events
# built once: SQLAlchemy keys its compiled-statement cache on the statement, which costs per new object
_LOAD = (
    sa.select(
        _d.c.id,
        _d.c.event_id,
        _d.c.route_id,
        _d.c.target_id,
        _d.c.attempts,
        _d.c.retry_base,
        _d.c.lease_until,
        _d.c.last_error,
        _d.c.last_status_code,
        _d.c.order_key,
        *t.EVENT_FOR_MAPPING,
    )
    .join(_e, _e.c.id == _d.c.event_id)
    .where(_d.c.id.in_(sa.bindparam("ids", expanding=True)))
)
_RECORD = (
    sa.update(_d)
    .where(_d.c.id == sa.bindparam("b_id"), _d.c.status == "sending", _d.c.lease_until == sa.bindparam("b_lease"))
    .values(
        status=sa.bindparam("b_status"),
        attempts=sa.bindparam("b_attempts"),
        next_attempt_at=sa.bindparam("b_next"),
        last_error=sa.bindparam("b_error"),
        last_status_code=sa.bindparam("b_code"),
        delivered_at=sa.bindparam("b_delivered"),
        remote_id=sa.bindparam("b_remote_id"),
        remote_url=sa.bindparam("b_remote_url"),
        mapping_version=sa.func.coalesce(sa.bindparam("b_mapping", type_=sa.String), _d.c.mapping_version),
        lease_until=None,
        updated_at=sa.bindparam("b_updated"),
    )
)


_ATTEMPT = t.attempts.insert()
_RECORD_SQLITE, _ATTEMPT_SQLITE = Plain(_RECORD), Plain(_ATTEMPT)
_RECORD_PG, _ATTEMPT_PG = PlainPg(_RECORD), PlainPg(_ATTEMPT)


async def _load(rt: Runtime, ids: list[str]) -> Sequence[Any]:
    if rt.sqlite is not None:
        return rt.sqlite.load(ids)
    if rt.pg is not None:
        return await rt.pg.load(ids)
    async with rt.autocommit.connect() as conn:
        return list(await conn.execute(_LOAD, {"ids": ids}))


def _retry_delay(
    row: Any, attempts: int, schedule: list[float] | None = None, retry_after: float | None = None
) -> float | None:
    """Seconds before the next try, in the schedule a manual retry restarts; None when it is used up."""
    return next_delay(attempts - row.retry_base, schedule, _rng, retry_after)


def _final(row: Any, status: str, error: str, now: float) -> Outcome:
    log.warning("delivery %s", status, extra={"delivery_id": row.id, "event_id": row.event_id, "cause": error})
    result = SendResult("dead", error=error)
    return Outcome(row.id, row.lease_until, status, row.attempts + 1, now, error, attempt=result, started_at=now)


async def _render(rt: Runtime, ev: Any, route: RouteInfo) -> tuple[Post | None, str]:
    """The Post of one stored event through the route's mapping (None: its ``when`` skips it), rendered
    in a render process under its deadline (hub/mapping/pool.py)."""
    spec = await rt.cache.connector(ev.connector)
    source = await rt.cache.source(ev.source_id)
    mapping, version = rt.mappings.resolve_versioned(ev.connector, ev.type, route.mapping)
    event = EventForMapping.of(ev, source.name if source else "")
    return await rt.renderer.render(event, spec, mapping, await rt.cache.directory(), route.id), version


async def _calm_post(rt: Runtime, row: Any, route: RouteInfo, now: float) -> tuple[Post | None, str]:
    """A coalescing or digest route: the post carrying this delivery and those folded into it."""
    events = [row, *await fold(rt.engine, row, route, now)]
    if route.digest is not None:
        rendered = await asyncio.gather(*(_render(rt, ev, route) for ev in events))  # one batch to render
        posts = [p for p, _ in rendered if p is not None]
        source = await rt.cache.source(row.source_id)
        return (digest_post(posts, row, source.name if source else "") if posts else None), rendered[0][1]
    version = ""
    for ev in reversed(events):  # the last state that posts at all
        post, version = await _render(rt, ev, route)
        if post is not None:
            return with_updates(post, len(events)), version
    return None, version


async def _prepare(rt: Runtime, row: Any) -> Prepared | Outcome:
    """The delivery's Post, or its outcome when there is nothing to send."""
    now = time.time()
    route = await rt.cache.route(row.route_id)
    target_info = await rt.cache.target(row.target_id)
    target = get_target(target_info.kind) if target_info else None
    if route is None or target_info is None or target is None:
        return _final(row, "dead", "the route or target was deleted", now)
    if route.quiet_hours is not None and (opens := route.quiet_hours.next_open(now)) > now:
        # not an attempt: outside the route's business hours, the post waits for the next opening
        return Outcome(row.id, row.lease_until, "pending", row.attempts, opens, "outside the route's business hours")
    try:
        if route.coalesce_seconds or route.digest is not None:
            post, version = await _calm_post(rt, row, route, now)
        else:
            post, version = await _render(rt, row, route)
        if post is None:
            skipped = Outcome(row.id, row.lease_until, "skipped", row.attempts, now, "mapping 'when' is false")
            skipped.mapping_version = version
            return skipped
    except MappingTimedOut as exc:  # nothing was sent, but the try is counted: it ends after the schedule
        delay = _retry_delay(row, row.attempts + 1)
        if delay is None:
            return _final(row, "failed", f"mapping failed: {exc}", now)
        return Outcome(row.id, row.lease_until, "pending", row.attempts + 1, now + delay, f"mapping failed: {exc}")
    except MappingError as exc:
        return _final(row, "failed", f"mapping failed: {exc}", now)
    if not target_info.enabled:  # not an attempt: the delivery waits until the target is enabled again
        return Outcome(
            row.id, row.lease_until, "pending", row.attempts, now + DISABLED_RECHECK, "the target is disabled"
        )
    direct = target.direct_person(post) if route.notify_direct else None
    return Prepared(row, post, target, target_info, version, direct)


def _new_anchor(p: Prepared, anchor: ThreadAnchor | None, result: SendResult) -> NewAnchor | None:
    """A first post that a later one can reply to (its id) or link (its URL)."""
    if anchor is not None or p.post.thread_key is None or result.outcome != "delivered" or p.direct_to:
        return None  # a direct message is not the channel thread's first post
    threading = p.target.manifest.threading
    if (threading == "anchor" and result.remote_id) or (threading == "none" and result.remote_url):
        return NewAnchor(p.info.id, p.post.thread_key, result.remote_id, result.remote_url, p.row.id)
    return None


async def _send(rt: Runtime, p: Prepared, flow: BatchFlow, anchor: ThreadAnchor | None) -> Outcome:
    row, target_info, target = p.row, p.info, p.target
    now = time.time()
    attempts = row.attempts + 1
    retry_at = await flow_wait(rt, target_info, flow, now)
    if retry_at is not None:  # not an attempt: nothing was sent
        return Outcome(row.id, row.lease_until, "pending", row.attempts, retry_at, row.last_error, row.last_status_code)
    ctx = DeliveryContext(
        row.id,
        row.event_id,
        row.target_id,
        rt.http,
        rt.settings.delivery_timeout,
        rt.egress,
        anchor=anchor,
        now=now,
        tokens=rt.tokens,
        inbox=rt.inbox,
        direct_to=p.direct_to,
        direct=rt.direct,
    )
    try:  # a total limit: a target that trickles its answer must not outlive the batch's leases
        async with asyncio.timeout(rt.settings.delivery_timeout + 1):
            result = await target.deliver(p.post, target_info.config, ctx)
    except TimeoutError:
        result = SendResult("retry", error=f"timeout: no complete answer within {rt.settings.delivery_timeout}s")
    except Exception as exc:  # a target bug must not lose the delivery: retry it like a failed send
        secrets = target.secrets_of(target_info.config)
        trace = scrub("".join(traceback.format_exception(exc)), secrets)
        log.error("target %s raised\n%s", target_info.kind, trace, extra={"delivery_id": row.id})
        result = SendResult("retry", error=scrub(f"{type(exc).__name__}: {exc}", secrets)[:500])
    st = flow.states.get(target_info.id)
    dirty = st is None or st.state != "closed" or st.failures or target_info.id in flow.failed
    if result.outcome == "delivered" and dirty:
        await observe(rt.engine, target_info.id, True, policy_of(rt), now)
    elif result.outcome == "retry":
        flow.failed.add(target_info.id)
        await observe(rt.engine, target_info.id, False, policy_of(rt), now)
    if result.outcome == "delivered":
        out = Outcome(row.id, row.lease_until, "delivered", attempts, now, None, result.status_code, result, now)
        out.anchor = _new_anchor(p, anchor, result)
        return out
    if result.outcome == "gone":  # the delivery waits with the others; a breaker reset makes them all due
        code = result.status_code
        reason = f"HTTP {code}: the target's URL is gone (webhook removed or its token revoked)"
        await disable(rt.engine, target_info.id, now, reason)
        log.warning(f"target gone ({code}): disabled", extra={"target_id": target_info.id, "delivery_id": row.id})
        result.error = f"HTTP {code}: the target is disabled until its breaker is reset"
        return Outcome(
            row.id, row.lease_until, "pending", attempts, now + DISABLED_RECHECK, result.error, code, result, now
        )
    if result.outcome == "retry":
        delay = _retry_delay(row, attempts, target_info.retry_schedule, result.retry_after)
        if delay is not None:
            return Outcome(
                row.id, row.lease_until, "pending", attempts, now + delay, result.error, result.status_code, result, now
            )
        result.error = f"{result.error} (retries exhausted)"
    log.warning("delivery dead", extra={"delivery_id": row.id, "event_id": row.event_id, "cause": result.error})
    return Outcome(row.id, row.lease_until, "dead", attempts, now, result.error, result.status_code, result, now)


async def _record(rt: Runtime, outcomes: list[Outcome]) -> None:
    now = time.time()
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
            "b_remote_id": o.attempt.remote_id if o.attempt and o.status == "delivered" else None,
            "b_remote_url": o.attempt.remote_url if o.attempt and o.status == "delivered" else None,
            "b_mapping": o.mapping_version,
            "b_updated": now,
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
    anchors = [o.anchor for o in outcomes if o.anchor is not None]
    if rt.sqlite is not None:  # on the one writer thread (hub/delivery/sqlite_path.py)
        steps: list[tuple[Plain, Sequence[Mapping[str, object]]]] = [
            (_ATTEMPT_SQLITE, attempt_rows),
            (_RECORD_SQLITE, params),
            (ANCHOR_SQLITE, anchor_rows(anchors, now)),
        ]
        await rt.sqlite.write(steps)
    elif rt.pg is not None:  # one transaction on plain asyncpg (hub/delivery/pg_path.py)
        await rt.pg.write([(_ATTEMPT_PG, attempt_rows), (_RECORD_PG, params), (ANCHOR_PG, anchor_rows(anchors, now))])
    else:
        async with rt.engine.begin() as conn:
            if attempt_rows:
                await conn.execute(_ATTEMPT, attempt_rows)
            await conn.execute(_RECORD, params)
            await write_anchors(conn, anchors, now)
    rt.metrics.record(outcomes)


async def process_batch(rt: Runtime, ids: list[str], release: Callable[[int], None] | None = None) -> None:
    """Load a batch of claimed deliveries with their events and process them (``process_rows``)."""
    if not ids:
        return
    rows = await _load(rt, ids)
    if len(rows) < len(ids):
        await _drop_orphans(rt, set(ids) - {r.id for r in rows})
    await process_rows(rt, rows, release)


async def process_rows(rt: Runtime, rows: Sequence[Any], release: Callable[[int], None] | None = None) -> None:
    """Prepare leased deliveries (rows with the columns of ``_LOAD``), read their threads' anchors in one
    query, send them concurrently, then write every outcome in one transaction. Deliveries whose mapping
    is still rendering after ``SLOW_RENDER`` seconds go on as a second group: a heavy mapping does not
    hold the others. ``release(n)`` is told as each group is finished."""
    if not rows:
        return
    targets = {r.target_id for r in rows}
    if rt.sqlite is not None:
        states = rt.sqlite.states(targets)
    else:
        states = await rt.pg.states(targets) if rt.pg is not None else await load_states(rt.autocommit, targets)
    flow = BatchFlow(states)
    tasks = [asyncio.ensure_future(_safely(r, _prepare(rt, r))) for r in rows]
    waiting = set(tasks)
    while waiting:  # the group ready now goes on; the slower ones follow as they get ready
        ready, waiting = await asyncio.wait(waiting, timeout=SLOW_RENDER)
        if ready:
            await _finish(rt, [task.result() for task in tasks if task in ready], flow)
            if waiting and release is not None:
                release(len(ready))


async def _finish(rt: Runtime, staged: list[Prepared | Outcome], flow: BatchFlow) -> None:
    """Send the prepared deliveries of a group and record the outcomes of all."""
    outcomes = [s for s in staged if isinstance(s, Outcome)]
    ready = [s for s in staged if isinstance(s, Prepared)]
    try:
        keys = [k for p in ready if (k := p.anchor_key()) is not None]
        if rt.sqlite is not None:
            anchors = rt.sqlite.anchors(keys)
        else:
            anchors = await rt.pg.anchors(keys) if rt.pg is not None else await load_anchors(rt.autocommit, keys)
    except Exception:  # nothing was sent: every prepared delivery is tried again shortly
        log.exception("reading thread anchors failed; retrying the batch later")
        outcomes += [_internal_error(p.row, "thread anchors unavailable") for p in ready]
        ready, anchors = [], {}
    sent = await asyncio.gather(*(_safely(p.row, _send(rt, p, flow, _anchor_of(p, anchors))) for p in ready))
    for p, out in zip(ready, sent, strict=True):
        out.mapping_version = p.mapping_version
    if outcomes or sent:
        await _record(rt, outcomes + list(sent))


def _anchor_of(p: Prepared, anchors: dict[AnchorKey, ThreadAnchor]) -> ThreadAnchor | None:
    key = p.anchor_key()
    return anchors.get(key) if key is not None else None


async def _safely(row: Any, step: Awaitable[_T]) -> _T | Outcome:
    """One delivery's failure (a database blip while counting for the breaker…) must not discard the
    outcomes of the others: it is tried again shortly, like a failed send (at-least-once)."""
    try:
        return await step
    except Exception as exc:
        log.exception("processing a delivery failed; retrying it later", extra={"delivery_id": row.id})
        return _internal_error(row, type(exc).__name__)


def _internal_error(row: Any, what: str) -> Outcome:
    error = f"internal error: {what}"
    now, attempts = time.time(), row.attempts + 1  # counted: a failure that recurs ends as a dead letter
    delay = _retry_delay(row, attempts)
    if delay is None:
        return Outcome(row.id, row.lease_until, "dead", attempts, now, error)
    return Outcome(row.id, row.lease_until, "pending", attempts, now + delay, error)


async def _drop_orphans(rt: Runtime, ids: set[str]) -> None:
    """Claimed deliveries whose event is gone (purged meanwhile): dead, or they would block their thread."""
    d = t.deliveries
    async with rt.engine.begin() as conn:
        await conn.execute(
            sa.update(d)
            .where(d.c.id.in_(ids), d.c.status == "sending")
            .values(status="dead", lease_until=None, last_error="its event is no longer stored", updated_at=time.time())
        )
    log.warning("deliveries without their event marked dead", extra={"count": len(ids)})
