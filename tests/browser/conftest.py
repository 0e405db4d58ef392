"""Real Chromium (Debian's package) driven by Playwright against a real hub server on a free port.

Requests to any other host are blocked and recorded: the pages must work on a host without internet access.
Screenshots go to ``test-artifacts/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import Page, Route, async_playwright

from hub.app import create_asgi_app
from hub.config import Settings
from tests.receiver import free_port

ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


def _chromium() -> str | None:
    """Debian's chromium (CHROMIUM_PATH may point elsewhere); None when it is not installed."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    return found if Path(found).is_file() else None


CHROMIUM = _chromium()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# each browser test module sets ``pytestmark = needs_chromium`` (a conftest's own pytestmark applies to nothing)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
)


@dataclass
class Offline:
    """Which requests left for another host (all were refused), and the page's uncaught errors."""

    base: str
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def hub_server(settings: Settings) -> AsyncIterator[str]:
    """`hub serve`'s ASGI app on a free port of 127.0.0.1; its base URL."""
    port = free_port()
    config = uvicorn.Config(create_asgi_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the hub server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def browser_page(hub_server: str) -> AsyncIterator[tuple[Page, Offline]]:
    """A fresh page whose requests to any host but this machine's loopback are aborted (and recorded)."""
    offline = Offline(hub_server)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})

        async def only_hub(route: Route) -> None:
            url = route.request.url
            if urlsplit(url).hostname == "127.0.0.1":  # hub, and a stand-in identity provider
                await route.continue_()
            else:
                offline.blocked.append(url)
                await route.abort("internetdisconnected")

        await context.route("**/*", only_hub)
        page = await context.new_page()
        page.on("pageerror", lambda exc: offline.errors.append(str(exc)))
        try:
            yield page, offline
        finally:
            await context.close()
            await browser.close()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
