"""Dropbox fetch-on-notify against the stand-in: the notification is stored (200) and not routed; hub reads
files/list_folder/continue from the account's cursor and stores one event per changed entry."""

from __future__ import annotations

import httpx

from hub.runtime import Runtime
from tests.conftest import wait_for
from tests.storage.conftest import (
    connect,
    events_of,
    fetched,
    inbox_route,
    notify_dropbox,
    settled,
    storage_source,
    storage_state,
)
from tests.storage.standins import (
    DROPBOX_ACCOUNT,
    OTHER_ACCOUNT,
    StandIns,
    dropbox_deleted,
    dropbox_file,
    dropbox_folder,
)


async def test_one_notification_gives_one_event_per_changed_entry(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    dbx = standins.dropbox
    dbx.journal.append(dropbox_file("/Sales/old-before-connect.txt", "0001"))  # before the consent: never posted
    src = await storage_source(client, standins, "dropbox")
    inbox = await inbox_route(client, src["id"], ["*"])
    connected = await connect(client, src["id"])
    assert connected == {"source_id": src["id"], "connected": True, "account": DROPBOX_ACCOUNT}
    await settled(client, src["id"])
    dbx.journal += [
        dropbox_folder("/Sales/Forecasts"),
        dropbox_file("/Sales/Forecasts/Q3-forecast.xlsx", "015f0a1c2", modified_by=OTHER_ACCOUNT),
        dropbox_deleted("/Sales/draft.docx"),
    ]
    notification = await notify_dropbox(client, src["id"])
    await settled(client, src["id"])
    events = await fetched(client, src["id"])
    assert [e["type"] for e in events] == ["folder.added", "file.changed", "file.deleted"]
    q3 = events[1]["payload"]
    assert q3["item"]["name"] == "Q3-forecast.xlsx"
    assert q3["item"]["path"] == "/Sales/Forecasts/Q3-forecast.xlsx"
    assert q3["item"]["folder"] == "/Sales/Forecasts"
    assert q3["item"]["size"] == 48213
    assert q3["actor"] == {"name": "Paul Martin", "email": "", "id": OTHER_ACCOUNT}
    assert q3["via"] == {"notification_event_id": notification, "api": "files/list_folder/continue"}
    assert events[0]["payload"]["actor"]["name"] == "Marie Dupont"  # the connected account (get_current_account)
    # the notification is stored, not routed; the fetched events are
    [note] = await events_of(client, src["id"], "list_folder")
    assert note["id"] == notification and note["status"] == "ignored"

    async def posted() -> bool:
        return len((await client.get("/api/v1/inbox", params={"target_id": inbox})).json()) == 3

    await wait_for(posted)
    titles = {p["post"]["title"] for p in (await client.get("/api/v1/inbox")).json()}
    assert "Q3-forecast.xlsx was saved in Sales/Forecasts by Paul Martin" in titles
    state = await storage_state(client, src["id"])
    assert state["credentials"]["set"] and state["credentials"]["account"] == DROPBOX_ACCOUNT
    assert state["changes_posted"] == 3 and state["changes_filtered"] == 0
    assert "access_token" not in str(state) and "rt-" not in str(state)
