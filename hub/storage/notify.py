"""After a notification is stored (and before it is acknowledged): ask for a fetch, act on lifecycle events.

Called by the ingest pipeline once the request's events are committed. Every notification asks for a fetch —
a repeat too (Dropbox and Graph send the same body for every change, so a "repeat" within the dedup window may
be a new change): fetches are coalesced per feed, so many notifications make one fetch. Never fails the
acknowledgement: an error here is logged, and the periodic resync catches the feed up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from hub.config_cache import SourceInfo
from hub.ingest.store import NewEvent, StoredEvent
from hub.runtime import Runtime
from hub.storage.credentials import load_credentials
from hub.storage.cursors import request_fetch
from hub.storage.fetch import JOB as FETCH_JOB
from hub.storage.providers import provider_for
from hub.storage.session import storage_settings
from hub.storage.subscriptions import JOB as SUBSCRIPTION_JOB
from hub.storage.subscriptions import lifecycle

log = logging.getLogger("hub.storage")


def _payload(ev: NewEvent) -> Any:
    try:
        return json.loads(ev.payload) if ev.payload is not None else json.loads(ev.body or b"null")
    except (ValueError, RecursionError):
        return None


async def after_ingest(
    rt: Runtime, source: SourceInfo, rows: Sequence[NewEvent], stored: Sequence[StoredEvent]
) -> None:
    provider = provider_for(source.connector)
    if provider is None:
        return
    try:
        cfg = storage_settings(source)
    except ValueError:
        return
    try:
        accounts: list[str] = []
        notification_id: str | None = None
        subscription_changed = False
        for row, st in zip(rows, stored, strict=False):
            payload = _payload(row)
            if row.type.startswith("lifecycle.") and isinstance(payload, dict):
                event, sub_id = row.type.split(".", 1)[1], payload.get("subscriptionId")
                if isinstance(sub_id, str) and await lifecycle(rt.engine, source.id, event, sub_id):
                    subscription_changed = True
            feeds = provider.feeds(row.type, payload) if cfg.fetch_changes else None
            if feeds is not None:
                accounts += feeds or [""]
                notification_id = st.event_id
        if accounts:
            creds = await load_credentials(rt.engine, source.id)
            mine = creds.account if creds else None
            if mine and "" not in accounts and mine not in accounts:
                log.info("notification for another account: not fetched", extra={"source_id": source.id})
            else:
                await request_fetch(rt.engine, source.id, [""], notification_id)
                start_job(rt, FETCH_JOB, source.id)
        if subscription_changed:
            start_job(rt, SUBSCRIPTION_JOB, source.id)
    except Exception:
        log.exception("could not ask for a fetch; the periodic resync will", extra={"source_id": source.id})


_starting: set[asyncio.Task[None]] = set()
SUBMIT_TIMEOUT = 5.0


def start_job(rt: Runtime, job: str, source_id: str) -> None:
    """Start a background job without holding the acknowledgement (an enqueue may wait on Redis); the work
    is in the database already: a job that cannot start leaves it to the worker's next storage pass."""
    submit = rt.background
    if submit is None:
        return

    async def run() -> None:
        try:
            await asyncio.wait_for(submit(job, source_id), SUBMIT_TIMEOUT)
        except Exception as exc:
            log.warning("could not start a storage job", extra={"source_id": source_id, "cause": type(exc).__name__})

    task = asyncio.create_task(run())
    _starting.add(task)
    task.add_done_callback(_starting.discard)
