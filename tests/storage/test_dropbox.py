"""Dropbox fetch-on-notify against the stand-in: the notification is stored (200) and not routed; hub reads
files/list_folder/continue from the account's cursor and stores one event per changed entry."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from hub.runtime import Runtime
from hub.storage import fetch as fetch_module
from hub.storage.credentials import SourceTokenStore, load_credentials
from hub.storage.cursors import LEASE, claim
from hub.storage.fetch import fetch_feed, run_fetches
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


async def _connected_source(client: httpx.AsyncClient, standins: StandIns, **settings: object) -> str:
    src = await storage_source(client, standins, "dropbox", **settings)
    await connect(client, src["id"])
    await settled(client, src["id"])
    return str(src["id"])


async def test_many_notifications_for_one_account_make_one_fetch(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)  # notifications only ask; the test runs the fetch
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    for _ in range(10):
        await notify_dropbox(client, sid)
    before = dbx.count("files/list_folder/continue")
    assert await run_fetches(runtime, sid) == 1
    assert dbx.count("files/list_folder/continue") == before + 1
    assert [e["type"] for e in await fetched(client, sid)] == ["file.changed"]
    assert await run_fetches(runtime, sid) == 0  # nothing left to do


async def test_notifications_during_a_fetch_make_it_run_again(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    await notify_dropbox(client, sid)
    dbx.gate = asyncio.Event()
    calls = dbx.count("files/list_folder/continue")
    running = asyncio.create_task(run_fetches(runtime, sid))

    async def reading() -> bool:
        return dbx.count("files/list_folder/continue") > calls

    await wait_for(reading)
    dbx.journal.append(dropbox_file("/Sales/b.txt", "0b"))  # changed while the first answer is on its way
    for _ in range(3):
        await notify_dropbox(client, sid)
    assert await run_fetches(runtime, sid) == 0  # the feed is held: a second fetcher does nothing
    dbx.gate.set()
    assert await running == 2  # the first run, then once more for the notifications that came meanwhile
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["a.txt", "b.txt"]


async def test_a_crash_between_fetch_and_commit_repeats_nothing_and_loses_nothing(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal += [dropbox_file(f"/Sales/f{i}.txt", f"0{i}") for i in range(5)]  # three answers of two
    await notify_dropbox(client, sid)
    real = fetch_module.store_fetched
    calls = {"n": 0}

    async def dies_on_the_second_page(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise asyncio.CancelledError  # the process dies: its transaction is never committed
        return await real(*args, **kwargs)

    monkeypatch.setattr(fetch_module, "store_fetched", dies_on_the_second_page)
    with pytest.raises(asyncio.CancelledError):
        await run_fetches(runtime, sid)
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["f0.txt", "f1.txt"]
    assert await run_fetches(runtime, sid) == 0  # its lease still holds the feed
    held = await claim(runtime.engine, sid, "", time.time() + LEASE + 1)  # the lease ran out: another worker
    assert held is not None
    await fetch_feed(runtime, held)
    names = [e["payload"]["item"]["name"] for e in await fetched(client, sid)]
    assert names == [f"f{i}.txt" for i in range(5)]  # each once, none lost


async def test_a_stalled_fetcher_whose_lease_was_taken_commits_nothing(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    await notify_dropbox(client, sid)
    stalled = await claim(runtime.engine, sid, "", time.time())
    assert stalled is not None
    taker = await claim(runtime.engine, sid, "", time.time() + LEASE + 1)  # the stalled one's lease ran out
    assert taker is not None
    await fetch_feed(runtime, taker)
    await fetch_feed(runtime, stalled)  # wakes up, reads the same answer, cannot commit it
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["a.txt"]


async def test_changes_outside_the_watched_folders_or_of_ignored_types_are_counted_not_posted(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(
        client, standins, watch_folders=["Sales/Forecasts"], ignore_file_types=["tmp", "~$*", "image/*"]
    )
    dbx.page_size = 10
    dbx.journal += [
        dropbox_file("/Sales/Forecasts/Q3-forecast.xlsx", "01"),
        dropbox_file("/sales/forecasts/Deep/Q4.xlsx", "02"),  # inside, whatever the case
        dropbox_file("/Sales/Forecasts/~$Q3-forecast.xlsx", "03"),  # an Office lock file
        dropbox_file("/Sales/Forecasts/scratch.TMP", "04"),
        dropbox_file("/HR/salaries.xlsx", "05"),  # outside
        dropbox_file("/Sales/Forecasts-old/x.xlsx", "06"),  # a prefix of the name is not the folder
    ]
    await notify_dropbox(client, sid)
    await settled(client, sid)
    assert [e["payload"]["item"]["path"] for e in await fetched(client, sid)] == [
        "/Sales/Forecasts/Q3-forecast.xlsx",
        "/sales/forecasts/Deep/Q4.xlsx",
    ]
    state = await storage_state(client, sid)
    assert (state["changes_posted"], state["changes_filtered"]) == (2, 4)
    metrics = (await client.get("/metrics")).text
    assert 'hub_storage_changes_total{connector="dropbox",outcome="outside_folders"} 2.0' in metrics
    assert 'hub_storage_changes_total{connector="dropbox",outcome="ignored_type"} 2.0' in metrics


async def test_throttling_is_retried_after_retry_after_and_the_cursor_stays(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    dbx.fail.append(
        (
            429,
            {"Retry-After": "120"},
            {
                "error_summary": "too_many_requests/",
                "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 120},
            },
        )
    )
    await notify_dropbox(client, sid)
    started = time.time()
    await run_fetches(runtime, sid)
    [feed] = (await storage_state(client, sid))["feeds"]
    assert feed["failing"] and feed["pending"]
    assert "HTTP 429" in feed["last_error"]
    assert 115 < _ts(feed["next_attempt_at"]) - started < 130
    await notify_dropbox(client, sid)  # a notification does not cut a throttle short
    assert await run_fetches(runtime, sid) == 0
    assert await fetched(client, sid) == []
    held = await claim(runtime.engine, sid, "", time.time() + 121)
    assert held is not None
    await fetch_feed(runtime, held)
    assert [e["type"] for e in await fetched(client, sid)] == ["file.changed"]
    assert not (await storage_state(client, sid))["feeds"][0]["failing"]


async def test_a_refusal_is_visible_on_the_source_and_the_next_notification_tries_again(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    dbx.fail.append((403, {}, {"error_summary": "missing_scope/..", "error": {".tag": "missing_scope"}}))
    await notify_dropbox(client, sid)
    await run_fetches(runtime, sid)
    source = (await client.get(f"/api/v1/sources/{sid}")).json()
    [feed] = source["storage"]["feeds"]
    assert feed["failing"] and feed["last_error"] == "files/list_folder/continue: HTTP 403 missing_scope/.."
    assert "hub_storage_fetch_failing" in (await client.get("/metrics")).text
    await notify_dropbox(client, sid)  # the admin fixed the app's scopes: the next notification fetches
    assert await run_fetches(runtime, sid) == 1
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["a.txt"]


async def test_a_reset_cursor_starts_again_from_the_latest(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.journal.append(dropbox_file("/Sales/lost.txt", "01"))
    dbx.reset_cursors = True
    await notify_dropbox(client, sid)
    await run_fetches(runtime, sid)
    dbx.reset_cursors = False
    dbx.journal.append(dropbox_file("/Sales/after.txt", "02"))
    await notify_dropbox(client, sid)
    await run_fetches(runtime, sid)
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["after.txt"]


async def test_a_refused_access_token_is_refreshed_once(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    refreshes = len([r for r in dbx.oauth.token_requests if r["grant_type"] == "refresh_token"])
    dbx.oauth.revoke_access()  # the provider no longer takes the token hub holds (not expired for hub)
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    await notify_dropbox(client, sid)
    await run_fetches(runtime, sid)
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["a.txt"]
    assert len([r for r in dbx.oauth.token_requests if r["grant_type"] == "refresh_token"]) == refreshes + 1


async def test_an_expired_access_token_is_refreshed_before_the_call(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    store = SourceTokenStore(runtime.engine, runtime.box)
    creds = await load_credentials(runtime.engine, sid)
    assert creds is not None
    token = await store.load(creds.store_key)
    assert token is not None and token["expires_at"] > time.time()
    await store.save(creds.store_key, {**token, "expires_at": time.time() - 10})
    dbx.oauth.expire_access()
    calls = dbx.count("files/list_folder/continue")
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    await notify_dropbox(client, sid)
    await run_fetches(runtime, sid)
    assert dbx.count("files/list_folder/continue") == calls + 1  # no call with the expired token
    assert [r["grant_type"] for r in dbx.oauth.token_requests][-1] == "refresh_token"
    assert len([e for e in await fetched(client, sid)]) == 1
    state = await storage_state(client, sid)
    assert _ts(state["credentials"]["expires_at"]) > time.time() + 3600


async def test_refused_credentials_are_visible_and_nothing_is_lost(
    client: httpx.AsyncClient,
    runtime: Runtime,
    standins: StandIns,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dbx = standins.dropbox
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    dbx.oauth.revoke_access()
    dbx.oauth.refuse_grants = True  # the user revoked the app
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    await notify_dropbox(client, sid)
    await run_fetches(runtime, sid)
    state = await storage_state(client, sid)
    assert "invalid_grant" in state["credentials"]["last_error"]
    assert state["feeds"][0]["failing"] and "invalid_grant" in state["feeds"][0]["last_error"]
    dbx.oauth.refuse_grants = False
    await connect(client, sid)  # reconnected (the same account): the feed goes on from its cursor
    await run_fetches(runtime, sid)
    assert [e["payload"]["item"]["name"] for e in await fetched(client, sid)] == ["a.txt"]
    tokens = [t for t in dbx.oauth.access] + list(dbx.oauth.refresh_tokens)
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert not any(t in logged for t in tokens)
    shown = str(await storage_state(client, sid)) + (await client.get(f"/api/v1/sources/{sid}")).text
    assert not any(t in shown for t in tokens)


async def test_a_notification_for_another_account_is_not_fetched(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = await _connected_source(client, standins)
    monkeypatch.setattr(runtime, "background", None)
    await notify_dropbox(client, sid, [OTHER_ACCOUNT])
    assert not (await storage_state(client, sid))["feeds"][0]["pending"]


async def test_a_pasted_refresh_token_connects_the_source(
    client: httpx.AsyncClient, runtime: Runtime, standins: StandIns
) -> None:
    dbx = standins.dropbox
    src = await storage_source(client, standins, "dropbox")
    bad = await client.put(f"/api/v1/sources/{src['id']}/credentials", json={"refresh_token": "not-a-token"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "credentials_refused")
    assert not (await storage_state(client, src["id"]))["credentials"]["set"]
    pasted = dbx.oauth.new_refresh_token()
    ok = await client.put(f"/api/v1/sources/{src['id']}/credentials", json={"refresh_token": pasted})
    assert ok.status_code == 200, ok.text
    assert ok.json()["credentials"]["set"] and pasted not in ok.text
    await settled(client, src["id"])
    assert (await storage_state(client, src["id"]))["credentials"]["account_name"] == "Marie Dupont"
    dbx.journal.append(dropbox_file("/Sales/a.txt", "0a"))
    await notify_dropbox(client, src["id"])
    await settled(client, src["id"])
    assert [e["payload"]["item"]["name"] for e in await fetched(client, src["id"])] == ["a.txt"]
    assert (await client.delete(f"/api/v1/sources/{src['id']}/credentials")).status_code == 204
    assert not (await storage_state(client, src["id"]))["credentials"]["set"]


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
