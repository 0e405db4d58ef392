"""Google Drive against the stand-in: changes.list from a stored page token (nextPageToken pages, then
newStartPageToken), parents looked up for paths, and the changes.watch channel: opened at consent, renewed
before it expires by a new channel with the old one stopped."""

from __future__ import annotations

import time
from typing import Any

import httpx
import sqlalchemy as sa

from hub.db import tables as t
from hub.runtime import Runtime
from hub.storage.subscriptions import maintain_subscriptions
from tests.conftest import wait_for
from tests.storage.conftest import (
    DRIVE_SECRET,
    PUBLIC_URL,
    connect,
    events_of,
    fetched,
    notify_drive,
    settled,
    storage_source,
    storage_state,
)
from tests.storage.standins import StandIns, drive_change


async def _source(client: httpx.AsyncClient, standins: StandIns, **settings: Any) -> str:
    src = await storage_source(client, standins, "google-drive", **settings)
    await connect(client, src["id"])
    await settled(client, src["id"])
    return str(src["id"])


async def test_a_notification_reads_changes_and_posts_each_file(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    drive = standins.drive
    sid = await _source(client, standins)
    await notify_drive(client, sid, 1, "sync")  # the channel's first message: nothing to fetch
    drive.journal += [
        drive_change("f1", "Q3-forecast.pdf", "fc", "2024-07-01T09:00:30.000Z", created="2024-07-01T09:00:00.000Z"),
        drive_change("f2", "Budget.pdf", "sales", "2024-07-01T10:00:00.000Z", created="2024-01-01T09:00:00.000Z"),
        drive_change("f3", "Old.pdf", "fc", "2024-07-01T11:00:00.000Z", trashed=True),
        drive_change("f4", "", "", "2024-07-01T12:00:00.000Z", removed=True),
        {"kind": "drive#change", "changeType": "drive", "time": "2024-07-01T12:00:00Z", "driveId": "d1"},
    ]
    await notify_drive(client, sid, 2)
    await settled(client, sid)
    events = await fetched(client, sid)
    assert [e["type"] for e in events] == ["file.added", "file.updated", "file.deleted", "file.deleted"]
    assert events[0]["payload"]["item"]["path"] == "/Sales/Forecasts/Q3-forecast.pdf"
    assert events[0]["payload"]["item"]["size"] == 48213
    assert events[1]["payload"]["item"]["folder"] == "/Sales"
    assert events[2]["payload"]["trashed"] is True
    assert events[3]["payload"]["item"]["id"] == "f4"
    assert drive.count("files.get") == 3  # Forecasts, Sales, My Drive: once each
    assert [e["status"] for e in await events_of(client, sid, "change")] == ["ignored"]
    assert [e["status"] for e in await events_of(client, sid, "sync")] == ["ignored"]


async def test_the_channel_is_opened_and_renewed_by_a_new_one_with_the_old_one_stopped(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    drive = standins.drive

    sid = await _source(client, standins, subscription_hours=24)

    async def opened() -> bool:
        sub = (await storage_state(client, sid))["subscription"]
        return bool(sub and sub["status"] == "active")

    await wait_for(opened)
    [channel] = drive.channels.values()
    assert (channel["token"], channel["address"]) == (DRIVE_SECRET, f"{PUBLIC_URL}/hooks/{sid}")
    first = (await storage_state(client, sid))["subscription"]
    assert first["id"] == channel["id"]
    s = t.storage_subscriptions
    async with runtime.engine.begin() as conn:
        expires = await conn.scalar(sa.select(s.c.expires_at).where(s.c.source_id == sid))
        assert 23.9 * 3600 < expires - time.time() <= 24 * 3600  # what hub asked for
        await conn.execute(sa.update(s).where(s.c.source_id == sid).values(next_check_at=0))
    await maintain_subscriptions(runtime, sid)
    second = (await storage_state(client, sid))["subscription"]
    assert second["status"] == "active" and second["id"] != first["id"]
    assert drive.stopped == [first["id"]] and list(drive.channels) == [second["id"]]
