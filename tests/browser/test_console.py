"""The console at /admin in real Chromium, against a real hub with real deliveries to a local stand-in RSE:
the overview's charts, events (filters, paging, an event's attempts, request and post link, a mapping
preview), dead letters (retry one, bulk retry behind a confirmation, with progress), creating, editing
and disabling a target and a route. Forms are sent with Enter; no request leaves for another host.
Screenshots at 1280 and 800 px go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import ConsoleMessage, Page, async_playwright, expect

from hub.app import create_app
from hub.config import Settings
from hub.db import tables as t
from hub.ingest.fastpath import IngestFastPath
from hub.runtime import Runtime
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Offline, needs_chromium, screenshot_path
from tests.conftest import wait_for
from tests.helpers import ADMIN_KEY, AUTH, GITHUB_SECRET, github_issue, github_request
from tests.receiver import Received, Receiver, free_port, serve_receiver

pytestmark = needs_chromium

BEARER = "tok-SECRET-4242-never-shown"
WIDTHS = (1280, 800)


@dataclass
class Hub:
    page: Page
    offline: Offline
    api: httpx.AsyncClient
    rt: Runtime
    rse: Receiver
    ids: dict[str, str]


class StandInRse:
    """/ok answers the post it made ({id, url}); /broken refuses (400: a dead letter) until ``healed``."""

    def __init__(self) -> None:
        self.healed = False
        self.posts = 0

    def __call__(self, got: Received) -> tuple[int, dict[str, str], bytes]:
        if got.path == "/broken" and not self.healed:
            return 400, {}, b'{"error": "channel archived"}'
        self.posts += 1
        body = {"id": f"post-{self.posts}", "url": f"https://rse.example/posts/{self.posts}"}
        return 200, {}, json.dumps(body).encode()


async def _fire(api: httpx.AsyncClient, source_id: str, number: int, action: str) -> str:
    body, headers = github_request(github_issue(number, action))
    resp = await api.post(f"/hooks/{source_id}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])


async def _seed(api: httpx.AsyncClient, rse: Receiver) -> dict[str, str]:
    """A GitHub source; 'team feed' takes opened issues (3 delivered), 'broken feed' closed ones (4 dead)."""

    async def made(path: str, body: dict[str, Any]) -> str:
        resp = await api.post(path, json=body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    src = await made("/api/v1/sources", {"connector": "github", "name": "acme org", "secret": GITHUB_SECRET})
    ok = await made(
        "/api/v1/targets", {"kind": "webhook", "name": "team feed", "url": f"{rse.base}/ok", "bearer_token": BEARER}
    )
    broken = await made("/api/v1/targets", {"kind": "webhook", "name": "broken feed", "url": f"{rse.base}/broken"})
    await made("/api/v1/routes", {"source_id": src, "target_id": ok, "events": ["issues.opened"]})
    await made("/api/v1/routes", {"source_id": src, "target_id": broken, "events": ["issues.closed"]})
    opened = [await _fire(api, src, n, "opened") for n in (1, 2, 3)]
    closed = [await _fire(api, src, n, "closed") for n in (11, 12, 13, 14)]

    async def settled() -> bool:
        delivered = (await api.get("/api/v1/deliveries", params={"status": "delivered"})).json()
        dead = (await api.get("/api/v1/dead-letters")).json()
        return len(delivered) == 3 and len(dead) == 4

    await wait_for(settled, timeout=20)
    return {"source": src, "ok": ok, "broken": broken, "opened": opened[0], "closed": closed[0]}


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(IngestFastPath(app), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the hub server did not start"
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    stand_in = StandInRse()
    try:
        async with (
            serve_receiver(Receiver(respond=stand_in)) as rse,
            httpx.AsyncClient(base_url=base, headers=AUTH) as api,
            async_playwright() as pw,
        ):
            rse.stand_in = stand_in  # type: ignore[attr-defined]
            ids = await _seed(api, rse)
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            offline = Offline(base)

            async def only_hub(route: Any) -> None:
                if route.request.url.startswith(base + "/"):
                    await route.continue_()
                else:
                    offline.blocked.append(route.request.url)
                    await route.abort("internetdisconnected")

            await context.route("**/*", only_hub)
            page = await context.new_page()
            page.on("pageerror", lambda exc: offline.errors.append(str(exc)))
            page.on("console", lambda m: offline.errors.append(m.text) if _unexpected(m) else None)
            try:
                yield Hub(page, offline, api, app.state.runtime, rse, ids)
            finally:
                await context.close()
                await browser.close()
    finally:
        server.should_exit = True
        await task


async def sign_in(hub: Hub, view: str = "overview") -> Page:
    """Type the API key and press Enter (the sign-in form), then open a view."""
    page = hub.page
    await page.goto(f"{hub.offline.base}/admin#/{view}")
    await page.locator("#key").fill(ADMIN_KEY)
    await page.locator("#key").press("Enter")
    await expect(page.locator("#who")).to_have_text("bootstrap admin (admin)")
    return page


async def shoot(page: Page, name: str) -> None:
    """Screenshots at 1280 and 800 px wide; at 800 nothing may stick out sideways."""
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.wait_for_timeout(100)
        await page.screenshot(path=screenshot_path(f"console-{name}-{width}"), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {width} px is {overflow} px too wide"
    await page.set_viewport_size({"width": 1280, "height": 900})


def _unexpected(message: ConsoleMessage) -> bool:
    """A console error, except the browser's note of a 4xx answer (the page shows those: a refused
    change, the first "who am I" before a key is typed)."""
    return message.type == "error" and "the server responded with a status of 4" not in message.text


def clean(hub: Hub) -> None:
    assert hub.offline.blocked == [], hub.offline.blocked
    assert hub.offline.errors == [], hub.offline.errors


async def test_overview_charts_from_the_hubs_own_data(hub: Hub) -> None:
    page = await sign_in(hub)
    events = page.locator(".card[data-series=events]")
    await expect(events.locator(".figure")).to_have_text("7")  # 3 opened + 4 closed, all in the last hour
    await expect(page.locator(".card[data-series=delivered] .figure")).to_have_text("3")
    await expect(page.locator(".card[data-series=dead] .figure")).to_have_text("4")
    await expect(page.locator(".card[data-series=failures] .figure")).to_have_text("4")
    counts = [int(c) for c in await events.locator("rect.bar").evaluate_all("rs => rs.map(r => r.dataset.count)")]
    assert sum(counts) == 7 and counts, counts  # bars drawn from the stats buckets
    label = await events.locator("svg").get_attribute("aria-label")
    assert label == f"events received: 7 in 60 buckets, at most {max(counts)} in one"
    await expect(page.locator("#rate-events b")).to_have_text("0.12/min")  # 7 per hour
    breakers = page.locator("section", has_text="Targets and circuit breakers")
    await expect(breakers.locator("tr", has_text="team feed")).to_contain_text("closed")
    await expect(breakers.locator("tr", has_text="broken feed")).to_contain_text("webhook")
    sources = page.locator("section", has_text="Sources")
    await expect(sources.locator("tr", has_text="acme org")).to_contain_text("issues.closed")
    await shoot(page, "overview")
    await page.get_by_role("link", name="day").click()
    await expect(page.locator("#charts")).to_be_visible()
    await expect(page.locator("h2", has_text="Last day")).to_be_visible()
    assert len(await page.locator(".card[data-series=events] rect.bar").all()) >= 1
    clean(hub)


async def test_events_filter_page_and_show_attempts_request_post_and_preview(hub: Hub) -> None:
    # 30 more, older events: two pages of 25
    now = time.time()
    async with hub.rt.engine.begin() as conn:
        await conn.execute(
            t.events.insert(),
            [
                {
                    "id": f"evt_{int((now - 7200 - n) * 1e9):016x}0000{n:04x}",
                    "source_id": hub.ids["source"],
                    "connector": "github",
                    "type": "push",
                    "subject": f"old push {n}",
                    "status": "ignored",
                    "headers": {},
                    "body": b"{}",
                    "received_at": now - 7200 - n,
                }
                for n in range(30)
            ],
        )
    page = await sign_in(hub, "events")
    rows = page.locator("#view tbody tr")
    await expect(rows).to_have_count(25)
    await page.locator("#older").click()
    await expect(rows).to_have_count(12)  # 37 in all
    await expect(page.locator("#pager")).to_contain_text("older page")
    await page.get_by_role("button", name="← Newer").click()
    await expect(rows).to_have_count(25)

    await page.locator("#event-filters input[name=type]").fill("issues.closed")
    await page.locator("#event-filters input[name=type]").press("Enter")  # Enter submits the filters
    await expect(rows).to_have_count(4)
    await page.locator("#event-filters select[name=status]").select_option("failed")
    await page.locator("#event-filters input[name=q]").fill("#12")
    await page.locator("#event-filters input[name=q]").press("Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Hello-World#12")
    await page.get_by_role("link", name="Clear").click()
    await expect(rows).to_have_count(25)
    await page.locator("#event-filters select[name=status]").select_option("delivered")
    await page.locator("#event-filters input[name=q]").fill("#2")
    await page.locator("#event-filters input[name=q]").press("Enter")
    await expect(rows).to_have_count(1)
    await shoot(page, "events")

    await rows.first.click()  # the detail: attempts, mapping version, the post, the request
    delivery = page.locator(".delivery")
    await expect(delivery).to_contain_text("To team feed")
    await expect(delivery.locator("tbody tr")).to_have_count(1)
    await expect(delivery.locator("tbody tr")).to_contain_text("delivered")
    await expect(delivery.locator(".mapping-version")).to_have_text("builtin:github/issues.opened")
    link = delivery.locator("a.post-link")
    assert (await link.get_attribute("href") or "").startswith("https://rse.example/posts/")
    await delivery.get_by_role("button", name="Show request").click()
    await expect(delivery.locator(".request pre")).to_contain_text("Found a bug #2")
    request_text = await delivery.locator(".request pre").text_content() or ""
    await delivery.get_by_text("response", exact=True).click()  # the attempt's answer
    await expect(delivery.locator("tbody pre")).to_contain_text('"id": "post-')
    assert "authorization" in request_text.lower() and BEARER not in request_text  # the token is masked
    await expect(page.locator("#view")).to_contain_text('"number": 2')  # the payload
    form = page.locator("#preview-form")
    await form.locator("textarea").fill('{"post": {"title": "Issue {{ payload.issue.number }} in preview"}}')
    await form.locator("textarea").press("Control+Enter")
    await expect(page.locator("#preview-out")).to_contain_text("Issue 2 in preview")
    await form.locator("textarea").fill("")
    await form.get_by_role("button", name="Preview").click()
    await expect(page.locator("#preview-out")).to_contain_text("Found a bug #2")
    await shoot(page, "event")
    assert BEARER not in await page.content()
    clean(hub)


async def test_dead_letters_retry_one_then_bulk_with_confirmation_and_progress(hub: Hub) -> None:
    page = await sign_in(hub, "dead-letters")
    rows = page.locator("#view tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.first).to_contain_text("acme org")  # names, not ids
    await expect(rows.first).to_contain_text("broken feed")
    await expect(rows.first).to_contain_text("HTTP 400")
    await shoot(page, "dead-letters")

    hub.rse.stand_in.healed = True  # type: ignore[attr-defined]
    first = rows.first
    await first.get_by_role("button", name="Retry").click()
    await expect(first).to_contain_text("queued again")

    async def one_left_dead() -> bool:
        return len((await hub.api.get("/api/v1/dead-letters")).json()) == 3

    await wait_for(one_left_dead)

    await page.locator("#dead-filters input[name=error_contains]").fill("nothing like this")
    await page.locator("#dead-filters input[name=error_contains]").press("Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("No dead letter matches")
    await page.locator("#dead-filters input[name=error_contains]").fill("http 400")
    await page.locator("#dead-filters select[name=target_id]").select_option(label="broken feed")
    await page.locator("#dead-filters input[name=error_contains]").press("Enter")
    await expect(rows).to_have_count(3)

    await page.locator("#bulk").click()  # asked first, naming the count; Escape cancels
    dialog = page.locator("#confirm")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Retry 3 dead letters matching this filter?")
    await page.keyboard.press("Escape")
    await expect(page.locator("#bulk-status")).to_have_text("Cancelled.")
    assert (await hub.api.get("/api/v1/jobs")).json() == []

    await expect(dialog).to_be_hidden()
    await page.locator("#bulk").click()
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Retry 3 dead letters")
    await expect(page.locator("#confirm-ok")).to_be_focused()
    await page.keyboard.press("Enter")  # the confirm button has the focus
    await expect(page.locator("#bulk-status")).to_have_text("Done: 3 of 3 sent again.")
    progress = page.locator("#bulk-progress")
    assert await progress.evaluate("p => [p.value, p.max]") == [3, 3]
    jobs = (await hub.api.get("/api/v1/jobs")).json()
    assert [(j["status"], j["total"], j["params"]["target_id"]) for j in jobs] == [("done", 3, hub.ids["broken"])]
    await shoot(page, "dead-letters-after-bulk")

    async def all_delivered() -> bool:
        return (await hub.api.get("/api/v1/dead-letters")).json() == []

    await wait_for(all_delivered)
    clean(hub)


async def test_create_edit_disable_a_target_and_a_route(hub: Hub) -> None:
    page = await sign_in(hub, "targets")
    await page.locator("#new-target").click()
    form = page.locator("#target-form")
    await form.locator("select[name=kind]").select_option("webhook")
    assert '"url"' in (await form.locator("textarea[name=settings]").input_value())  # the kind's example
    await form.locator("textarea[name=settings]").fill(json.dumps({"url": f"{hub.rse.base}/new"}))
    await form.locator("input[name=name]").fill("new feed")
    await form.locator("input[name=name]").press("Enter")  # Enter creates
    row = page.locator("#view tbody tr", has_text="new feed")
    await expect(row).to_contain_text("webhook")
    created = next(x for x in (await hub.api.get("/api/v1/targets")).json() if x["name"] == "new feed")
    assert created["url"] == f"{hub.rse.base}/…" and created["enabled"] is True  # a secret URL: path hidden

    await row.get_by_role("button", name="Edit").click()
    await form.locator("input[name=name]").fill("renamed feed")
    await form.locator("input[name=name]").press("Enter")
    row = page.locator("#view tbody tr", has_text="renamed feed")
    await expect(row).to_be_visible()
    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("disabled")
    after = (await hub.api.get(f"/api/v1/targets/{created['id']}")).json()
    assert (after["name"], after["enabled"], after["url"]) == ("renamed feed", False, f"{hub.rse.base}/…")
    await shoot(page, "targets")

    await page.get_by_role("link", name="Routes").click()
    await page.locator("#new-route").click()
    form = page.locator("#route-form")
    await form.locator("select[name=source_id]").select_option(label="acme org")
    await form.locator("select[name=target_id]").select_option(label="renamed feed (webhook)")
    await form.locator("input[name=events]").fill("pull_request.*")
    await form.locator("input[name=events]").press("Enter")
    row = page.locator("#view tbody tr", has_text="pull_request.*")
    await expect(row).to_contain_text("renamed feed")
    await row.get_by_role("button", name="Edit").click()
    await form.locator("input[name=events]").fill("pull_request.opened, issues.reopened")
    await form.locator("input[name=events]").press("Enter")
    row = page.locator("#view tbody tr", has_text="pull_request.opened, issues.reopened")
    await expect(row).to_be_visible()
    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("disabled")
    route = next(r for r in (await hub.api.get("/api/v1/routes")).json() if r["target_id"] == created["id"])
    assert (route["events"], route["enabled"]) == (["pull_request.opened", "issues.reopened"], False)

    await page.locator("#new-route").click()  # a refusal is shown, not lost
    await form.locator("input[name=events]").fill("no.such.event")
    await form.locator("input[name=events]").press("Enter")
    await expect(form).to_contain_text("sends no event matching")

    opened = page.locator("#view tbody tr", has_text="issues.opened")
    await opened.get_by_role("button", name="Dry run").click()
    dry = page.locator("#dry-run")
    await dry.locator("textarea").fill('{"post": {"title": "dry {{ payload.issue.number }}"}}')
    await dry.get_by_role("button", name="Run").click()
    await expect(dry).to_contain_text("3 changed")
    await shoot(page, "routes")
    clean(hub)
