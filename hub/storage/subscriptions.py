"""Provider subscriptions kept alive: Graph subscriptions and Drive watch channels, one per source.

A scheduled job of the worker (:mod:`hub.storage.loop`) creates the subscription of every source that wants one
(``manage_subscription``, credentials set, enabled), renews it when half its lifetime is gone (Graph: ``PATCH``;
re-created when the renewal finds it gone; Drive: a new channel, then the old one stopped), and deletes it when
the source no longer wants it. Graph's lifecycle notifications act on it at once: ``reauthorizationRequired``
renews (a renewal reauthorizes), ``subscriptionRemoved`` re-creates (and fetches what was missed).

Several workers may run the job: each row is claimed with a compare-and-set lease, so one acts. A failure is
kept on the row (``last_error``, status ``failing``), logged with the time left, shown on the source and on
``/metrics`` (``hub_storage_subscription_failing``, ``hub_storage_subscription_expiry_seconds``), and retried
with a backoff that stays well inside the time left.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.config_cache import SourceInfo
from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.ids import new_id
from hub.metrics import Metrics
from hub.runtime import Runtime
from hub.storage.client import ProviderError
from hub.storage.credentials import credentials_of
from hub.storage.providers import PROVIDERS
from hub.storage.providers.base import Provider, Subscription, SubscriptionGone, SubscriptionTarget
from hub.storage.session import NotReady, Session, open_session, storage_settings

log = logging.getLogger("hub.storage")
LEASE = 120.0
RETRY = (60.0, 300.0, 900.0, 1800.0, 3600.0)
JOB = "storage_subscription"
SUBSCRIBING = tuple(c for c, p in PROVIDERS.items() if p.max_subscription_hours)

_s = t.storage_subscriptions


@dataclass(frozen=True)
class Row:
    source_id: str
    status: str
    remote_id: str | None
    resource_id: str | None
    resource: str | None
    expires_at: float | None
    reauthorize: bool
    attempts: int
    lease_id: str
    secret_hash: str | None = None


def secret_hash(secret: str | None) -> str:
    """What a subscription row keeps of the secret it was made with: a rotated secret makes a new one."""
    return hashlib.sha256((secret or "").encode()).hexdigest()


def lifetime(provider: Provider, hours: float) -> float:
    return min(hours, provider.max_subscription_hours or hours) * 3600.0


def renew_at(now: float, expires_at: float) -> float:
    """Half-way through the time a subscription has left: well before it expires."""
    return now + max(expires_at - now, 0.0) / 2


async def _sources(engine: AsyncEngine, source_id: str | None) -> list[str]:
    s = t.sources
    stmt = sa.select(s.c.id).where(s.c.connector.in_(SUBSCRIBING))
    if source_id is not None:
        stmt = stmt.where(s.c.id == source_id)
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(stmt)]


def _wants(rt: Runtime, source: SourceInfo | None, has_credentials: bool) -> bool:
    if source is None or not source.enabled or not has_credentials:
        return False
    try:
        return storage_settings(source).manage_subscription
    except ValueError:
        return False


async def maintain_subscriptions(rt: Runtime, source_id: str | None = None) -> int:
    """One pass: rows for the sources that want a subscription, then every due row acted on. Returns how many
    rows were acted on."""
    now = time.time()
    ids = await _sources(rt.engine, source_id)
    creds = await credentials_of(rt.engine, ids)
    async with rt.engine.connect() as conn:
        existing = {
            r.source_id: (r.status, r.secret_hash)
            for r in await conn.execute(
                sa.select(_s.c.source_id, _s.c.status, _s.c.secret_hash).where(_s.c.source_id.in_(ids))
            )
        }
    wanted: list[str] = []
    now_due: list[str] = []
    for sid in ids:
        source = await rt.cache.source(sid)
        wants = _wants(rt, source, sid in creds)
        status, made_with = existing.get(sid, (None, None))
        if wants and status in (None, "deleted"):
            wanted.append(sid)
        elif (not wants and status not in (None, "deleted")) or (
            wants and status == "active" and source is not None and made_with != secret_hash(source.secret)
        ):  # to delete, or made with a secret since rotated: act now
            now_due.append(sid)
    if wanted or now_due:
        async with rt.engine.begin() as conn:
            for sid in wanted:
                await _want(conn, rt.engine.dialect.name, sid, now)
            if now_due:
                await conn.execute(sa.update(_s).where(_s.c.source_id.in_(now_due)).values(next_check_at=now))
    acted = 0
    due = sa.select(_s.c.source_id).where(
        _s.c.next_check_at <= now, _s.c.status != "deleted", sa.or_(_s.c.lease_until.is_(None), _s.c.lease_until < now)
    )
    if source_id is not None:
        due = due.where(_s.c.source_id == source_id)
    async with rt.engine.connect() as conn:
        due_ids = [r[0] for r in await conn.execute(due.limit(100))]
    for sid in due_ids:
        row = await _claim(rt.engine, sid, time.time())
        if row is not None:
            acted += 1
            await _act(rt, row, sid in creds)
    return acted


async def _want(conn: AsyncConnection, dialect: str, source_id: str, now: float) -> None:
    res = await conn.execute(
        sa.update(_s)
        .where(_s.c.source_id == source_id, _s.c.status == "deleted")
        .values(status="pending", remote_id=None, resource_id=None, expires_at=None, next_check_at=now, attempts=0)
    )
    if res.rowcount:
        return
    await conn.execute(
        insert_ignoring_conflicts(_s, dialect, "source_id").values(
            source_id=source_id,
            status="pending",
            reauthorize=False,
            next_check_at=now,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )


async def _claim(engine: AsyncEngine, source_id: str, now: float) -> Row | None:
    lease_id = new_id("lease")
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.update(_s)
                .where(
                    _s.c.source_id == source_id,
                    _s.c.next_check_at <= now,
                    _s.c.status != "deleted",
                    sa.or_(_s.c.lease_until.is_(None), _s.c.lease_until < now),
                )
                .values(lease_id=lease_id, lease_until=now + LEASE)
                .returning(
                    _s.c.status,
                    _s.c.remote_id,
                    _s.c.resource_id,
                    _s.c.resource,
                    _s.c.expires_at,
                    _s.c.reauthorize,
                    _s.c.attempts,
                    _s.c.secret_hash,
                )
            )
        ).first()
    if row is None:
        return None
    return Row(
        source_id,
        row.status,
        row.remote_id,
        row.resource_id,
        row.resource,
        row.expires_at,
        bool(row.reauthorize),
        int(row.attempts),
        lease_id,
        row.secret_hash,
    )


async def _save(engine: AsyncEngine, row: Row, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(_s)
            .where(_s.c.source_id == row.source_id, _s.c.lease_id == row.lease_id)
            .values(lease_id=None, lease_until=None, updated_at=time.time(), **values)
        )


def _current(row: Row) -> Subscription | None:
    if not row.remote_id or row.status in ("pending", "removed"):
        return None
    return Subscription(row.remote_id, row.expires_at or 0.0, row.resource or "", row.resource_id or "")


async def _act(rt: Runtime, row: Row, has_credentials: bool) -> None:
    now = time.time()
    source = await rt.cache.source(row.source_id)
    if source is None or not _wants(rt, source, has_credentials):
        await _drop(rt, row, source)
        return
    try:
        session = await open_session(rt, source)
        target = _target(rt, session)
        current = _current(row)
        if current is not None and row.secret_hash != secret_hash(source.secret):
            fresh = await _replace(session, target, current, now)  # the secret was rotated since it was made
        else:
            fresh = await _renew_or_create(session, target, current, now)  # due: half its time is gone
    except (ProviderError, NotReady) as exc:
        await _failed(rt, row, str(exc), now)
        return
    await _save(
        rt.engine,
        row,
        status="active",
        remote_id=fresh.remote_id,
        resource_id=fresh.resource_id or None,
        resource=fresh.resource or None,
        expires_at=fresh.expires_at,
        renewed_at=now,
        reauthorize=False,
        attempts=0,
        last_error=None,
        last_error_at=None,
        next_check_at=renew_at(now, fresh.expires_at),
        secret_hash=secret_hash(source.secret),
    )
    rt.metrics.storage_subscription_failing.labels(row.source_id).set(0)
    rt.metrics.storage_subscription_expiry.labels(row.source_id).set(fresh.expires_at - now)
    log.info(
        "subscription kept alive",
        extra={
            "source_id": row.source_id,
            "subscription": fresh.remote_id,
            "expires_in": round(fresh.expires_at - now),
        },
    )


def _target(rt: Runtime, session: Session) -> SubscriptionTarget:
    source = session.source
    if not rt.settings.public_url:
        raise NotReady("HUB_PUBLIC_URL is not set: the provider needs hub's public ingest URL to notify")
    if not source.secret:
        raise NotReady("the source has no secret (Graph's clientState, Drive's channel token)")
    url = f"{rt.settings.public_url.rstrip('/')}/hooks/{source.id}"  # the source's ingest_url
    return SubscriptionTarget(url, source.secret, lifetime(session.provider, session.cfg.subscription_hours))


async def _renew_or_create(
    session: Session, target: SubscriptionTarget, current: Subscription | None, now: float
) -> Subscription:
    provider, api, cfg = session.provider, session.api, session.cfg
    if current is None:
        return await provider.subscribe(api, cfg, target, now)
    try:
        return await provider.renew(api, cfg, target, current, now)
    except SubscriptionGone:
        log.warning("the subscription is gone; creating it again", extra={"source_id": session.source.id})
        return await provider.subscribe(api, cfg, target, now)


async def _replace(session: Session, target: SubscriptionTarget, old: Subscription, now: float) -> Subscription:
    """A new subscription with the current secret, then the old one deleted (its failure only logged)."""
    fresh = await session.provider.subscribe(session.api, session.cfg, target, now)
    try:
        await session.provider.unsubscribe(session.api, session.cfg, old)
    except ProviderError as exc:
        log.warning(
            "could not delete the replaced subscription", extra={"source_id": session.source.id, "cause": str(exc)}
        )
    return fresh


async def _failed(rt: Runtime, row: Row, error: str, now: float) -> None:
    wait = RETRY[min(row.attempts, len(RETRY) - 1)]
    if row.expires_at is not None and row.expires_at > now:
        wait = min(wait, max((row.expires_at - now) / 4, 30.0))  # several more tries before it expires
    await _save(
        rt.engine,
        row,
        status="failing" if row.status != "removed" else "removed",
        attempts=row.attempts + 1,
        last_error=error[:1000],
        last_error_at=now,
        next_check_at=now + wait,
    )
    rt.metrics.storage_subscription_failing.labels(row.source_id).set(1)
    expires_in = None if row.expires_at is None else round(row.expires_at - now)
    log.warning(
        "cannot create or renew the provider subscription",
        extra={"source_id": row.source_id, "expires_in": expires_in, "cause": error, "retry_in": round(wait)},
    )


async def _drop(rt: Runtime, row: Row, source: SourceInfo | None) -> None:
    """The source no longer wants its subscription: delete it at the provider (when it still can)."""
    current = _current(row)
    error = None
    if current is not None and source is not None:
        try:
            session = await open_session(rt, source)
            await session.provider.unsubscribe(session.api, session.cfg, current)
        except (ProviderError, NotReady) as exc:
            error = str(exc)
            log.warning(
                "could not delete the provider subscription; it ends at its expiry",
                extra={"source_id": row.source_id, "cause": error},
            )
    await _save(
        rt.engine,
        row,
        status="deleted",
        remote_id=None,
        resource_id=None,
        expires_at=None,
        reauthorize=False,
        attempts=0,
        last_error=error,
        last_error_at=time.time() if error else None,
        next_check_at=time.time() + 365 * 86400.0,
    )
    rt.metrics.storage_subscription_failing.labels(row.source_id).set(0)


async def drop_subscription(rt: Runtime, source_id: str) -> None:
    """Before a source (or its credentials) goes: delete its provider subscription, best effort."""
    now = time.time()
    async with rt.engine.begin() as conn:
        await conn.execute(sa.update(_s).where(_s.c.source_id == source_id).values(next_check_at=now, lease_until=None))
    row = await _claim(rt.engine, source_id, now)
    if row is None:
        return
    source = await rt.cache.source(source_id)
    with contextlib.suppress(Exception):
        await _drop(rt, row, source)


async def lifecycle(engine: AsyncEngine, source_id: str, event: str, subscription_id: str) -> bool:
    """Graph's lifecycle notification for the subscription hub keeps: reauthorize (renew) now, or re-create."""
    now = time.time()
    values: dict[str, Any]
    if event == "reauthorizationRequired":
        values = {"reauthorize": True, "next_check_at": now}
    elif event == "subscriptionRemoved":
        values = {"status": "removed", "next_check_at": now}
    else:
        return False
    async with engine.begin() as conn:
        res = await conn.execute(
            sa.update(_s)
            .where(_s.c.source_id == source_id, _s.c.remote_id == subscription_id, _s.c.status != "deleted")
            .values(updated_at=now, **values)
        )
    return bool(res.rowcount)


async def request_check(engine: AsyncEngine, source_id: str) -> None:
    """An admin asks: act on the source's subscription at the next pass (create, renew)."""
    async with engine.begin() as conn:
        await conn.execute(sa.update(_s).where(_s.c.source_id == source_id).values(next_check_at=time.time()))


async def set_gauges(conn: AsyncConnection, metrics: Metrics, now: float) -> None:
    """The subscription and fetch gauges, read from the database (true across all workers)."""
    metrics.storage_subscription_expiry.clear()
    metrics.storage_subscription_failing.clear()
    rows = await conn.execute(sa.select(_s.c.source_id, _s.c.status, _s.c.expires_at).where(_s.c.status != "deleted"))
    for sid, status, expires_at in rows:
        metrics.storage_subscription_failing.labels(sid).set(1 if status in ("failing", "removed") else 0)
        if expires_at is not None:
            metrics.storage_subscription_expiry.labels(sid).set(expires_at - now)
    c = t.storage_cursors
    metrics.storage_fetch_failing.clear()
    failing = await conn.execute(
        sa.select(c.c.source_id, sa.func.max(sa.case((c.c.failure.is_not(None), 1), else_=0))).group_by(c.c.source_id)
    )
    for sid, flag in failing:
        metrics.storage_fetch_failing.labels(sid).set(int(flag or 0))
