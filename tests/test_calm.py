"""Calm channels: coalescing by business object (nothing lost, on SQLite and Postgres, under concurrency),
business hours and the daily digest."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from hub.delivery.calm import Digest, QuietHours
from tests.conftest import create, make_settings, running_app, wait_for
from tests.helpers import GITHUB_SECRET, github_issue, github_request
from tests.pg import create_database, drop_database, sqlalchemy_url

PARIS = ZoneInfo("Europe/Paris")


def at(*args: int, zone: ZoneInfo = PARIS) -> float:
    return dt.datetime(*args, tzinfo=zone).timestamp()


# --- the rules ---------------------------------------------------------------------------------------------

HOURS = QuietHours(days=["mon", "tue", "wed", "thu", "fri"], start="08:30", end="18:00", timezone="Europe/Paris")


@pytest.mark.parametrize(
    ("when", "opens"),
    [
        (at(2026, 12, 1, 10, 0), at(2026, 12, 1, 10, 0)),  # Tuesday 10:00: open, at once
        (at(2026, 12, 1, 7, 0), at(2026, 12, 1, 8, 30)),  # before opening: the same morning
        (at(2026, 12, 1, 18, 0), at(2026, 12, 2, 8, 30)),  # at closing: the next morning
        (at(2026, 12, 4, 19, 0), at(2026, 12, 7, 8, 30)),  # Friday evening: Monday
        (at(2026, 12, 5, 12, 0), at(2026, 12, 7, 8, 30)),  # Saturday noon: Monday
        (at(2026, 3, 27, 20, 0), at(2026, 3, 30, 8, 30)),  # across the spring clock change
    ],
)
def test_business_hours(when: float, opens: float) -> None:
    assert HOURS.next_open(when) == opens
    assert HOURS.is_open(when) is (when == opens)


def test_hours_that_never_open_are_refused() -> None:
    with pytest.raises(ValueError, match="start before they end"):
        QuietHours(start="18:00", end="08:00")


def test_digest_time_is_today_or_tomorrow_in_its_zone() -> None:
    digest = Digest(at="17:00", timezone="Europe/Paris")
    assert digest.next_time(at(2026, 12, 1, 9, 0)) == at(2026, 12, 1, 17, 0)
    assert digest.next_time(at(2026, 12, 1, 17, 0)) == at(2026, 12, 2, 17, 0)


def test_schedules_refuse_unknown_zones_and_times() -> None:
    with pytest.raises(ValueError, match="time zone"):
        QuietHours(timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        Digest(at="25:00")


# --- coalescing through the app ----------------------------------------------------------------------------


async def fire(client: httpx.AsyncClient, source_id: str, number: int, action: str, delivery: str) -> None:
    payload = github_issue(number, action)
    payload["issue"]["title"] = f"Bug {number} ({action} {delivery})"
    body, headers = github_request(payload, delivery=delivery)
    resp = await client.post(f"/hooks/{source_id}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text


@pytest.fixture(params=["sqlite", "postgres"])
async def calm_client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = {"poll_interval": 0.1}
    name = await create_database() if request.param == "postgres" else None
    if name:
        overrides["database_url"] = sqlalchemy_url(name)
    try:
        async with running_app(make_settings(tmp_path, **overrides)) as (_, client):
            yield client
    finally:
        if name:
            await drop_database(name)


async def inbox_route(client: httpx.AsyncClient, **route: Any) -> dict[str, Any]:
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "gh", "secret": GITHUB_SECRET})
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "calm"})
    body = {"source_id": src["id"], "target_id": tgt["id"], "events": ["issues.*"], **route}
    return {"source": src, "target": tgt, "route": await create(client, "/api/v1/routes", body)}


async def test_events_of_one_object_within_the_window_become_one_post_and_none_is_lost(
    calm_client: httpx.AsyncClient,
) -> None:
    client = calm_client
    ids = await inbox_route(client, coalesce_seconds=2)
    source = ids["source"]["id"]
    # 12 changes of issue 1 and 3 of issue 2, sent concurrently, within the window
    sends = [fire(client, source, 1, "edited", f"one-{i}") for i in range(12)]
    sends += [fire(client, source, 2, "edited", f"two-{i}") for i in range(3)]
    await asyncio.gather(*sends)

    async def two_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) >= 2

    await wait_for(two_posts, timeout=20)
    await asyncio.sleep(0.5)  # nothing more comes
    posts = sorted((p["post"] for p in (await client.get("/api/v1/inbox")).json()), key=lambda p: p["title"])
    assert len(posts) == 2
    updates = {p["thread_key"]: next(f["value"] for f in p["fields"] if f["name"] == "Updates") for p in posts}
    assert updates == {
        "github:octocat/Hello-World#1": "12 updates",
        "github:octocat/Hello-World#2": "3 updates",
    }
    # lineage: every event is there, each carried by the delivered post of its object
    events = (await client.get("/api/v1/events", params={"limit": 100})).json()
    assert len(events) == 15
    carried: dict[str, int] = {}
    delivered = set()
    for ev in events:
        detail = (await client.get(f"/api/v1/events/{ev['id']}")).json()
        (d,) = detail["deliveries"]
        if d["status"] == "delivered":
            delivered.add(d["id"])
        else:
            assert d["status"] == "folded", d
            carried[d["folded_into"]] = carried.get(d["folded_into"], 0) + 1
            assert ev["status"] == "delivered"  # the event is done: its carrier delivered it
    assert set(carried) == delivered and sorted(carried.values()) == [2, 11]


async def test_a_busy_object_still_posts_once_per_window(client: httpx.AsyncClient) -> None:
    ids = await inbox_route(client, coalesce_seconds=1)
    source = ids["source"]["id"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    n = 0
    while loop.time() - started < 3.5:  # changes without a pause, longer than three windows
        await fire(client, source, 1, "edited", f"busy-{n}")
        n += 1
        await asyncio.sleep(0.05)

    async def posted_during() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) >= 2

    await wait_for(posted_during, timeout=10)  # the window does not slide: posts went out meanwhile


async def test_business_hours_hold_a_post_until_the_next_opening(client: httpx.AsyncClient, runtime: Any) -> None:
    from hub.db import tables as t

    closed_now = {"days": ["mon"], "start": "00:00", "end": "00:01", "timezone": "UTC"}
    now_utc = dt.datetime.now(dt.UTC)
    if now_utc.weekday() == 0 and now_utc.hour == 0 and now_utc.minute == 0:
        pytest.skip("the one open minute of the schedule is now")
    ids = await inbox_route(client, quiet_hours=closed_now)
    await fire(client, ids["source"]["id"], 5, "opened", "quiet-1")

    async def held() -> bool:
        events = (await client.get("/api/v1/events")).json()
        if not events:
            return False
        d = (await client.get(f"/api/v1/events/{events[0]['id']}")).json()["deliveries"][0]
        return d["last_error"] == "outside the route's business hours"

    await wait_for(held)
    async with runtime.engine.connect() as conn:
        due, attempts = (await conn.execute(sa.select(t.deliveries.c.next_attempt_at, t.deliveries.c.attempts))).one()
    opening = dt.datetime.fromtimestamp(due, dt.UTC)
    assert (opening.weekday(), opening.hour, opening.minute) == (0, 0, 0) and attempts == 0
    assert (await client.get("/api/v1/inbox")).json() == []


async def test_a_digest_gathers_the_routes_events_into_one_post(client: httpx.AsyncClient, runtime: Any) -> None:
    from hub.db import tables as t

    ids = await inbox_route(client, digest={"at": "17:00", "timezone": "Europe/Paris"})
    for n in (1, 2, 3):
        await fire(client, ids["source"]["id"], n, "opened", f"digest-{n}")
    async with runtime.engine.connect() as conn:
        due = set((await conn.execute(sa.select(t.deliveries.c.next_attempt_at))).scalars())
    assert len(due) == 1 and dt.datetime.fromtimestamp(due.pop(), PARIS).strftime("%H:%M") == "17:00"
    assert (await client.get("/api/v1/inbox")).json() == []
    async with runtime.engine.begin() as conn:  # the digest time has come
        await conn.execute(sa.update(t.deliveries).values(next_attempt_at=0))
    await runtime.dispatcher.notify()

    async def one_digest() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 1

    await wait_for(one_digest)
    post = (await client.get("/api/v1/inbox")).json()[0]["post"]
    assert post["title"] == "Digest: 3 updates from gh"
    assert [line.split("]")[0] for line in post["body"].splitlines()] == [
        "- [Issue #1 opened: Bug 1 (opened digest-1)",
        "- [Issue #2 opened: Bug 2 (opened digest-2)",
        "- [Issue #3 opened: Bug 3 (opened digest-3)",
    ]


async def test_calm_settings_are_validated(client: httpx.AsyncClient) -> None:
    ids = await inbox_route(client)
    route = ids["route"]["id"]
    both = await client.patch(f"/api/v1/routes/{route}", json={"coalesce_seconds": 60, "digest": {"at": "09:00"}})
    assert both.status_code == 422
    bad_zone = await client.patch(f"/api/v1/routes/{route}", json={"quiet_hours": {"timezone": "Nowhere/City"}})
    assert bad_zone.status_code == 422
    ok = await client.patch(f"/api/v1/routes/{route}", json={"coalesce_seconds": 120})
    assert ok.status_code == 200 and ok.json()["coalesce_seconds"] == 120
    cleared = await client.patch(f"/api/v1/routes/{route}", json={"coalesce_seconds": None})
    assert cleared.json()["coalesce_seconds"] is None
