"""The fetch job: read a feed's changes from its cursor and store one event per changed item.

Each page is committed in one transaction with the cursor it leads to (:func:`hub.storage.cursors.advance`);
a crash before that commit loses nothing (the cursor still points before the page) and repeats nothing (the
page's events were not stored). A feed without a cursor starts from the provider's latest: what existed before
is never posted. Bounded: at most ``MAX_PAGES`` answers per run (then the feed stays due), answers capped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from hub.config_cache import RouteInfo, SourceInfo
from hub.runtime import Runtime
from hub.storage.client import TOKEN_ENDPOINT, ProviderError
from hub.storage.credentials import note_error, update_account
from hub.storage.cursors import Claim, advance, claim, due_feeds, fail, finish
from hub.storage.filters import judge
from hub.storage.model import Page
from hub.storage.providers.base import CursorReset, FeedContext
from hub.storage.session import NotReady, Session, open_session
from hub.storage.store import FetchedEvent, fetched_event, store_fetched

log = logging.getLogger("hub.storage")
MAX_PAGES = 20  # answers read per run; a longer backlog goes on at the next run
MAX_ROUNDS = 5  # runs of one feed per call (notifications that arrived meanwhile make another)
JOB = "storage_fetch"


class LeaseLost(Exception):
    """Another fetcher took the feed over (this one stalled past its lease): nothing of this run is kept."""


async def run_fetches(rt: Runtime, source_id: str | None = None) -> int:
    """Fetch every due feed (of one source): returns how many runs were made."""
    runs = 0
    for sid, account in await due_feeds(rt.engine, time.time(), source_id):
        for _ in range(MAX_ROUNDS):
            held = await claim(rt.engine, sid, account, time.time())
            if held is None:
                break
            runs += 1
            await fetch_feed(rt, held)
    return runs


async def fetch_job(rt: Runtime, source_id: str) -> None:
    """The background job a notification starts (embedded: a task; scaled: an arq job on a worker)."""
    await run_fetches(rt, source_id)


async def fetch_feed(rt: Runtime, held: Claim) -> None:
    """One run of a claimed feed; its outcome is recorded on the feed (never raised)."""
    now = time.time()
    source = await rt.cache.source(held.source_id)
    if source is None or not source.enabled:
        await fail(rt.engine, held, "refused", "the source is disabled or gone", now)
        return
    connector = source.connector
    try:
        session = await open_session(rt, source)
    except NotReady as exc:
        await _failed(rt, source, held, ProviderError(str(exc), "refused"))
        return
    if not session.cfg.fetch_changes:
        await finish(rt.engine, held, True, now)  # turned off since the notification: nothing to fetch
        return
    creds = session.credentials
    if creds.account and held.account and creds.account != held.account:
        await _failed(rt, source, held, ProviderError("the credentials are for another account", "refused"))
        return
    try:
        await _run(rt, session, held)
    except ProviderError as exc:
        await _failed(rt, source, held, exc)
        if exc.code == TOKEN_ENDPOINT and exc.kind == "refused":
            await note_error(rt.engine, creds, exc.message)
    except LeaseLost:
        log.warning("fetch lease lost; another worker goes on", extra={"source_id": source.id, "account": held.account})
    except Exception as exc:  # a bug: the feed is retried later, the cause logged
        log.exception("fetch failed", extra={"source_id": source.id, "account": held.account})
        await _failed(rt, source, held, ProviderError(f"internal error: {type(exc).__name__}", "retry"))
    else:
        rt.metrics.storage_fetches.labels(connector, "ok").inc()
        rt.metrics.storage_fetch_failing.labels(source.id).set(0)


async def _failed(rt: Runtime, source: SourceInfo, held: Claim, exc: ProviderError) -> None:
    now = time.time()
    await fail(rt.engine, held, exc.kind, exc.message, now, exc.retry_after)
    rt.metrics.storage_fetches.labels(source.connector, exc.kind).inc()
    rt.metrics.storage_fetch_failing.labels(source.id).set(1)
    log.warning(
        "fetch failed; the cursor stays",
        extra={"source_id": source.id, "account": held.account, "outcome": exc.kind, "cause": exc.message},
    )


async def _commit(rt: Runtime, session: Session, held: Claim, page: Page | None, cursor: str) -> list[str]:
    """The page's events and the cursor it leads to, in one transaction; the delivery ids created."""
    source, cfg = session.source, session.cfg
    account = session.credentials.account or held.account
    events: list[FetchedEvent] = []
    filtered = 0
    via = {"notification_event_id": held.notification_id, "api": session.provider.feed_api}
    for change in page.changes if page else []:
        reason = judge(change, cfg)
        if reason is not None:
            filtered += 1
            rt.metrics.storage_changes.labels(source.connector, reason).inc()
            continue
        events.append(fetched_event(source.connector, account, change, via))
    routes: dict[str, Sequence[RouteInfo]] = {}
    for ev in events:
        if ev.type not in routes:
            routes[ev.type] = await rt.cache.routes_for(source.id, ev.type)
    now = time.time()
    async with rt.engine.begin() as conn:
        if not await advance(conn, held, cursor, len(events), filtered, now):
            raise LeaseLost()
        _, delivery_ids = await store_fetched(
            conn, rt.engine.dialect.name, source.id, source.connector, events, routes, now
        )
    if events:
        rt.metrics.storage_changes.labels(source.connector, "posted").inc(len(events))
    return delivery_ids


async def _start(rt: Runtime, session: Session, held: Claim) -> None:
    """A feed without a cursor: take the provider's latest, and learn whose account it is."""
    cursor = await session.provider.baseline(session.api, session.cfg)
    creds = session.credentials
    if not creds.account_name:
        who = await session.provider.whoami(session.api, session.cfg)
        if who is not None:
            await update_account(rt.engine, creds, *who)
    await _commit(rt, session, held, None, cursor)


async def _run(rt: Runtime, session: Session, held: Claim) -> None:
    source = session.source
    if held.cursor is None:
        await _start(rt, session, held)
        await finish(rt.engine, held, True, time.time())
        return
    creds = session.credentials
    ctx = FeedContext(creds.account or held.account, creds.account_name or "")
    cursor = held.cursor
    for _ in range(MAX_PAGES):
        try:
            page = await session.provider.page(session.api, session.cfg, cursor, ctx)
        except CursorReset as exc:
            log.warning(
                "the provider reset the change cursor: changes since the last fetch may be missing",
                extra={"source_id": source.id, "account": held.account, "cause": str(exc)},
            )
            rt.metrics.storage_fetches.labels(source.connector, "reset").inc()
            await _start(rt, session, held)
            await finish(rt.engine, held, True, time.time())
            return
        if await _commit(rt, session, held, page, page.cursor):
            await rt.dispatcher.notify()
        cursor = page.cursor
        if not page.more:
            await finish(rt.engine, held, True, time.time())
            if creds.last_error:
                await note_error(rt.engine, creds, None)
            return
    await finish(rt.engine, held, False, time.time())  # more pages wait: still due
