"""Change feeds, one per (source, account): asked for by notifications, claimed by one fetcher at a time.

``requested`` counts the notifications; ``done`` is the ``requested`` a complete fetch covered, so a feed is
due while ``requested > done`` (and its retry time has come). A fetcher claims a due feed with a
compare-and-set of a lease; the cursor only moves in :func:`advance`, inside the transaction that stores the
page's events, and only while the lease is the fetcher's: a fetcher that lost its lease (it stalled, another
took over) commits nothing. Notifications that arrive during a fetch leave ``requested > done``: the feed runs
again. A fetch that fails keeps its cursor; the feed is due again after the provider's Retry-After or a
backoff (``retry``), or after an hour or the next notification (``refused``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.ids import new_id

LEASE = 120.0  # seconds a claim holds a feed without committing a page
REFUSED_RECHECK = 3600.0  # a refused fetch is tried again after this (or at the next notification)
BACKOFF = (5.0, 15.0, 60.0, 300.0, 900.0)

_c = t.storage_cursors


@dataclass(frozen=True)
class Claim:
    source_id: str
    account: str
    lease_id: str
    cursor: str | None
    requested: int
    notification_id: str | None


def _key(source_id: str, account: str) -> sa.ColumnElement[bool]:
    return sa.and_(_c.c.source_id == source_id, _c.c.account == account)


def _fresh_row(
    source_id: str, account: str, notification_id: str | None, now: float, requested: int
) -> dict[str, object]:
    return {
        "source_id": source_id,
        "account": account,
        "cursor": None,
        "requested": requested,
        "done": 0,
        "lease_id": None,
        "lease_until": None,
        "next_attempt_at": now,
        "attempts": 0,
        "failure": None,
        "last_error": None,
        "last_error_at": None,
        "last_fetch_at": None,
        "last_notification_id": notification_id,
        "changes_posted": 0,
        "changes_filtered": 0,
        "created_at": now,
        "updated_at": now,
    }


async def request_fetch(
    engine: AsyncEngine, source_id: str, accounts: list[str], notification_id: str | None, now: float | None = None
) -> None:
    """A notification asks for a fetch of these feeds. A throttled feed keeps its Retry-After; a refused one
    is tried again at once (its admin may have fixed the cause)."""
    now = time.time() if now is None else now
    dialect = engine.dialect.name
    values: dict[str, object] = {
        "requested": _c.c.requested + 1,
        "next_attempt_at": sa.case(
            (sa.and_(_c.c.failure == "retry", _c.c.next_attempt_at > now), _c.c.next_attempt_at), else_=now
        ),
        "updated_at": now,
    }
    if notification_id is not None:
        values["last_notification_id"] = notification_id
    async with engine.begin() as conn:
        for account in dict.fromkeys(accounts):
            res = await conn.execute(sa.update(_c).where(_key(source_id, account)).values(**values))
            if res.rowcount:
                continue
            inserted = await conn.execute(
                insert_ignoring_conflicts(_c, dialect, "source_id", "account").values(
                    **_fresh_row(source_id, account, notification_id, now, 1)
                )
            )
            if not inserted.rowcount:  # created a moment ago by another notification: count this one too
                await conn.execute(sa.update(_c).where(_key(source_id, account)).values(requested=_c.c.requested + 1))


async def ensure_feed(engine: AsyncEngine, source_id: str, account: str, now: float | None = None) -> None:
    """A feed that starts now (new credentials): its first fetch takes the provider's latest cursor."""
    await request_fetch(engine, source_id, [account], None, now)


async def reset_feeds(engine: AsyncEngine, source_id: str, now: float | None = None) -> int:
    """Forget the source's cursors (new credentials, an admin's reset): the next fetch starts from now."""
    now = time.time() if now is None else now
    async with engine.begin() as conn:
        res = await conn.execute(
            sa.update(_c)
            .where(_c.c.source_id == source_id)
            .values(
                cursor=None,
                requested=_c.c.done + 1,
                next_attempt_at=now,
                attempts=0,
                failure=None,
                last_error=None,
                lease_id=None,
                lease_until=None,
                updated_at=now,
            )
        )
    return int(res.rowcount)


def _due(now: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        _c.c.requested > _c.c.done,
        _c.c.next_attempt_at <= now,
        sa.or_(_c.c.lease_until.is_(None), _c.c.lease_until < now),
    )


async def due_feeds(
    engine: AsyncEngine, now: float, source_id: str | None = None, limit: int = 100
) -> list[tuple[str, str]]:
    stmt = sa.select(_c.c.source_id, _c.c.account).where(_due(now)).order_by(_c.c.next_attempt_at).limit(limit)
    if source_id is not None:
        stmt = stmt.where(_c.c.source_id == source_id)
    async with engine.connect() as conn:
        return [(r.source_id, r.account) for r in await conn.execute(stmt)]


async def claim(engine: AsyncEngine, source_id: str, account: str, now: float, lease: float = LEASE) -> Claim | None:
    """Take a due feed (compare-and-set): None when it is not due or another fetcher holds it."""
    lease_id = new_id("lease")
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.update(_c)
                .where(_key(source_id, account), _due(now))
                .values(lease_id=lease_id, lease_until=now + lease, updated_at=now)
                .returning(_c.c.cursor, _c.c.requested, _c.c.last_notification_id)
            )
        ).first()
    if row is None:
        return None
    return Claim(source_id, account, lease_id, row.cursor, int(row.requested), row.last_notification_id)


async def advance(
    conn: AsyncConnection,
    held: Claim,
    cursor: str,
    posted: int,
    filtered: int,
    now: float,
    lease: float = LEASE,
) -> bool:
    """Move the cursor, in the caller's transaction (the one storing the page's events): False when the lease
    is no longer ours — the caller must roll back."""
    res = await conn.execute(
        sa.update(_c)
        .where(_key(held.source_id, held.account), _c.c.lease_id == held.lease_id)
        .values(
            cursor=cursor,
            changes_posted=_c.c.changes_posted + posted,
            changes_filtered=_c.c.changes_filtered + filtered,
            lease_until=now + lease,
            updated_at=now,
        )
    )
    return res.rowcount == 1


async def finish(engine: AsyncEngine, held: Claim, complete: bool, now: float) -> bool:
    """Release the lease after a fetch that read every page (``complete``: the notifications it covered are
    done) or stopped at its page limit (still due: it goes on at the next round)."""
    values: dict[str, object] = {
        "lease_id": None,
        "lease_until": None,
        "attempts": 0,
        "failure": None,
        "last_error": None,
        "last_error_at": None,
        "next_attempt_at": now,
        "updated_at": now,
    }
    if complete:
        values.update(done=held.requested, last_fetch_at=now)
    async with engine.begin() as conn:
        res = await conn.execute(
            sa.update(_c).where(_key(held.source_id, held.account), _c.c.lease_id == held.lease_id).values(**values)
        )
    return res.rowcount == 1


def backoff(attempts: int) -> float:
    return BACKOFF[min(attempts, len(BACKOFF) - 1)]


async def fail(
    engine: AsyncEngine,
    held: Claim,
    kind: Literal["retry", "refused"],
    error: str,
    now: float,
    retry_after: float | None = None,
) -> None:
    """Release the lease after a failure; the cursor stays where the last committed page left it."""
    async with engine.begin() as conn:
        attempts = await conn.scalar(
            sa.select(_c.c.attempts).where(_key(held.source_id, held.account), _c.c.lease_id == held.lease_id)
        )
        if attempts is None:
            return  # the lease was lost: its new holder reports
        wait = REFUSED_RECHECK if kind == "refused" else max(retry_after or 0.0, backoff(int(attempts)))
        await conn.execute(
            sa.update(_c)
            .where(_key(held.source_id, held.account), _c.c.lease_id == held.lease_id)
            .values(
                lease_id=None,
                lease_until=None,
                attempts=_c.c.attempts + 1,
                failure=kind,
                last_error=error[:1000],
                last_error_at=now,
                next_attempt_at=now + wait,
                updated_at=now,
            )
        )


async def request_resyncs(engine: AsyncEngine, source_ids: list[str], older_than: float, now: float) -> int:
    """Feeds of these sources not fetched since ``older_than``: due again (a notification lost on its way,
    or a crash between storing one and asking for its fetch, is caught up)."""
    if not source_ids:
        return 0
    async with engine.begin() as conn:
        res = await conn.execute(
            sa.update(_c)
            .where(
                _c.c.source_id.in_(source_ids),
                _c.c.requested <= _c.c.done,
                _c.c.cursor.is_not(None),
                sa.func.coalesce(_c.c.last_fetch_at, _c.c.created_at) < older_than,
            )
            .values(requested=_c.c.done + 1, updated_at=now)
        )
    return int(res.rowcount)


async def release_leases(engine: AsyncEngine) -> int:
    """At the start of the only worker (the embedded default on SQLite): the fetches a stop interrupted are
    due again now, not when their lease runs out. (With a shared Postgres, leases decide.)"""
    async with engine.begin() as conn:
        res = await conn.execute(
            sa.update(_c).where(_c.c.lease_id.is_not(None)).values(lease_id=None, lease_until=None)
        )
        await conn.execute(
            sa.update(t.storage_subscriptions)
            .where(t.storage_subscriptions.c.lease_id.is_not(None))
            .values(lease_id=None, lease_until=None)
        )
    return int(res.rowcount)
