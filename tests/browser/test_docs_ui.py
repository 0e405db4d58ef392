"""/docs (Swagger UI) and /redoc in real Chromium with every other host unreachable: the operations show."""

from __future__ import annotations

import httpx
from playwright.async_api import Page

from tests.browser.conftest import Offline, needs_chromium, screenshot_path

pytestmark = needs_chromium


async def _operation_count(base: str) -> int:
    async with httpx.AsyncClient() as c:
        spec = (await c.get(f"{base}/openapi.json")).json()
    return sum(len(ops) for ops in spec["paths"].values())


async def test_swagger_ui_lists_the_operations_offline(browser_page: tuple[Page, Offline]) -> None:
    page, offline = browser_page
    expected = await _operation_count(offline.base)
    await page.goto(f"{offline.base}/docs")
    await page.wait_for_selector(".opblock", timeout=20_000)
    assert await page.locator(".opblock").count() == expected
    assert await page.locator(".opblock-summary-path", has_text="/api/v1/sources").count() >= 1
    assert await page.get_by_text("Create a source").count() >= 1
    await page.screenshot(path=screenshot_path("docs-swagger-ui"), full_page=False)
    assert offline.blocked == [] and offline.errors == []


async def test_redoc_lists_the_operations_offline(browser_page: tuple[Page, Offline]) -> None:
    page, offline = browser_page
    expected = await _operation_count(offline.base)
    await page.goto(f"{offline.base}/redoc")
    await page.wait_for_selector("[data-section-id^='operation/']", timeout=20_000)
    assert await page.locator("[data-section-id^='operation/']").count() == expected
    assert await page.get_by_role("heading", name="Create a source").count() >= 1
    await page.screenshot(path=screenshot_path("docs-redoc"), full_page=False)
    assert offline.blocked == [] and offline.errors == []


async def test_root_leads_to_the_console(browser_page: tuple[Page, Offline]) -> None:
    page, offline = browser_page
    await page.goto(offline.base + "/")
    assert page.url == f"{offline.base}/admin"
    assert offline.blocked == [] and offline.errors == []
