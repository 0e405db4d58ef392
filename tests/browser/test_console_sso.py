"""Signing in to the console with the company's identity provider, in real Chromium: the SSO link, the
provider's redirect back, and the console then working on its session cookie (no API key pasted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from hub.config import Settings
from tests.browser.conftest import Offline, needs_chromium, screenshot_path
from tests.conftest import make_settings
from tests.oidc_provider import API_AUDIENCE, CLIENT_ID, CLIENT_SECRET, StandInProvider, serve_provider

pytestmark = needs_chromium


@pytest.fixture
async def provider() -> AsyncIterator[StandInProvider]:
    async with serve_provider(StandInProvider()) as p:
        yield p


@pytest.fixture
def settings(tmp_path: Path, provider: StandInProvider) -> Settings:
    return make_settings(
        tmp_path,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_audience=API_AUDIENCE,
        oidc_admin_groups="hub-admins",
    )


async def test_sign_in_with_sso_then_use_the_console(
    browser_page: tuple[Page, Offline], provider: StandInProvider
) -> None:
    page, offline = browser_page
    await page.goto(f"{offline.base}/")
    await page.get_by_role("link", name="Sign in with SSO").click()
    await page.wait_for_url(f"{offline.base}/admin")
    await page.get_by_text("ada@example.com (admin)").wait_for()
    await page.locator("#ready .pill", has_text="ready").wait_for()
    assert await page.locator("#msg").text_content() == ""  # the API calls went through on the cookie
    assert provider.authorize_requests[0]["code_challenge_method"] == "S256"
    await page.screenshot(path=screenshot_path("console-after-sso"))
    assert offline.blocked == [] and offline.errors == []
