"""What a storage source shows of its fetches, credentials and subscription (never a token)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from hub.db import tables as t
from hub.runtime import Runtime
from hub.storage.credentials import credentials_of
from hub.storage.providers import provider_for
from hub.storage.settings import parse_settings

CALLBACK_PATH = "/oauth/callback"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class CredentialsState(BaseModel):
    set: bool = Field(description="The source holds OAuth2 credentials (they are never shown).")
    grant: str | None = Field(None, description="authorization_code, refresh_token or client_credentials.")
    account: str | None = Field(None, description="The provider account they are for, when known.")
    account_name: str | None = None
    expires_at: str | None = Field(None, description="When the current access token expires (it is renewed before).")
    updated_at: str | None = None
    last_error: str | None = Field(None, description="The token endpoint's last refusal (reconnect the source).")


class FeedState(BaseModel):
    account: str = Field(description="The account of this change feed ('' for the source's one drive).")
    started: bool = Field(description="A cursor is stored: changes since then are fetched.")
    pending: bool = Field(description="A notification asked for a fetch that has not completed yet.")
    last_fetch_at: str | None = None
    next_attempt_at: str | None = None
    failing: bool = False
    last_error: str | None = Field(None, description="Why the last fetch failed (the cursor stayed).")
    last_error_at: str | None = None
    changes_posted: int = 0
    changes_filtered: int = Field(0, description="Changes outside watch_folders or of ignored file types.")


class SubscriptionState(BaseModel):
    managed: bool = Field(description="hub keeps a provider subscription alive for this source.")
    status: str | None = Field(None, description="pending, active, failing, removed or deleted.")
    id: str | None = Field(None, description="The Graph subscription id or the Drive channel id.")
    resource: str | None = None
    expires_at: str | None = None
    renewed_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None


class StorageState(BaseModel):
    fetch_changes: bool
    redirect_uri: str = Field(description="Register this redirect URI with the provider's OAuth app.")
    credentials: CredentialsState
    feeds: list[FeedState]
    changes_posted: int
    changes_filtered: int
    subscription: SubscriptionState | None = Field(None, description="None where hub cannot subscribe (Dropbox).")


def callback_url(rt: Runtime, request_base: str) -> str:
    return f"{(rt.settings.public_url or request_base).rstrip('/')}{CALLBACK_PATH}"


async def storage_states(rt: Runtime, rows: Iterable[Mapping[str, Any]], request_base: str) -> dict[str, StorageState]:
    """The storage state of each source row of a storage connector (others are left out): a few queries."""
    rows = [r for r in rows if provider_for(str(r["connector"])) is not None]
    ids = [str(r["id"]) for r in rows]
    if not ids:
        return {}
    creds = await credentials_of(rt.engine, ids)
    c, s = t.storage_cursors, t.storage_subscriptions
    async with rt.engine.connect() as conn:
        feeds = (await conn.execute(sa.select(c).where(c.c.source_id.in_(ids)).order_by(c.c.account))).mappings().all()
        subs = {r["source_id"]: r for r in (await conn.execute(sa.select(s).where(s.c.source_id.in_(ids)))).mappings()}
    by_source: dict[str, list[FeedState]] = {}
    for f in feeds:
        by_source.setdefault(f["source_id"], []).append(
            FeedState(
                account=f["account"],
                started=f["cursor"] is not None,
                pending=f["requested"] > f["done"],
                last_fetch_at=_iso(f["last_fetch_at"]),
                next_attempt_at=_iso(f["next_attempt_at"]) if f["requested"] > f["done"] else None,
                failing=f["failure"] is not None,
                last_error=f["last_error"],
                last_error_at=_iso(f["last_error_at"]),
                changes_posted=f["changes_posted"],
                changes_filtered=f["changes_filtered"],
            )
        )
    out: dict[str, StorageState] = {}
    for row in rows:
        sid = str(row["id"])
        provider = provider_for(str(row["connector"]))
        try:
            cfg = parse_settings(row.get("settings") or {})
            fetch, managed = cfg.fetch_changes, cfg.manage_subscription
        except ValueError:
            fetch, managed = False, False
        cr = creds.get(sid)
        sub = subs.get(sid)
        subscription = None
        if provider is not None and provider.max_subscription_hours:
            subscription = SubscriptionState(
                managed=managed and cr is not None,
                status=sub["status"] if sub else None,
                id=sub["remote_id"] if sub else None,
                resource=sub["resource"] if sub else None,
                expires_at=_iso(sub["expires_at"]) if sub else None,
                renewed_at=_iso(sub["renewed_at"]) if sub else None,
                last_error=sub["last_error"] if sub else None,
                last_error_at=_iso(sub["last_error_at"]) if sub else None,
            )
        mine = by_source.get(sid, [])
        out[sid] = StorageState(
            fetch_changes=fetch,
            redirect_uri=callback_url(rt, request_base),
            credentials=CredentialsState(
                set=cr is not None,
                grant=cr.grant if cr else None,
                account=cr.account if cr else None,
                account_name=cr.account_name if cr else None,
                expires_at=_iso(cr.expires_at) if cr else None,
                updated_at=_iso(cr.updated_at) if cr else None,
                last_error=cr.last_error if cr else None,
            ),
            feeds=mine,
            changes_posted=sum(f.changes_posted for f in mine),
            changes_filtered=sum(f.changes_filtered for f in mine),
            subscription=subscription,
        )
    return out
