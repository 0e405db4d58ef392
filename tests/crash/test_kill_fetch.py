"""kill -9 of `hub serve` (embedded default) in the middle of a fetch of Dropbox changes: after the restart the
fetch goes on from the last committed page — every changed file posted once, none lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers import ADMIN_KEY, AUTH
from tests.procs import HubProcess
from tests.receiver import free_port
from tests.storage.conftest import DROPBOX_SECRET, dropbox_notification
from tests.storage.standins import dropbox_file, serve_standins

pytestmark = pytest.mark.slow

PUBLIC_URL = "https://hub.example.com"
FILES = 9  # five answers of two


async def test_kill_serve_mid_fetch_repeats_nothing_and_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_PUBLIC_URL": PUBLIC_URL,
        "HUB_STORAGE_INTERVAL": "1",
    }
    hub = HubProcess(["serve", "--port", str(port)], env, tmp_path / "hub.log").start()
    async with serve_standins() as standins, httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as c:
        dbx = standins.dropbox
        try:
            await asyncio.to_thread(hub.wait_healthy, base)
            body = {
                "connector": "dropbox",
                "name": "dbx",
                "secret": DROPBOX_SECRET,
                "settings": standins.settings("dropbox"),
            }
            src = (await c.post("/api/v1/sources", json=body)).json()
            start = await c.get(f"/api/v1/sources/{src['id']}/oauth/start")
            consent = await c.get(start.headers["location"])
            params = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["location"]).query).items()}
            assert (await c.get("/oauth/callback", params=params)).status_code == 200

            async def idle() -> bool:
                feeds = (await c.get(f"/api/v1/sources/{src['id']}/storage")).json()["feeds"]
                return bool(feeds) and feeds[0]["started"] and not feeds[0]["pending"]

            await _until(idle)
            dbx.journal += [dropbox_file(f"/Sales/f{i}.txt", f"0{i}") for i in range(FILES)]
            dbx.gate = asyncio.Event()
            dbx.hold = {"files/list_folder/continue": 2}  # the third answer is held: two pages are committed
            payload, headers = dropbox_notification()
            assert (await c.post(f"/hooks/{src['id']}", content=payload, headers=headers)).status_code == 200

            async def held() -> bool:
                return dbx.count("files/list_folder/continue") >= 3

            await _until(held)
            hub.kill9()
            dbx.gate.set()
            dbx.hold = {}
            hub.start()
            await asyncio.to_thread(hub.wait_healthy, base)
            await _until(idle, 30)
            names = []
            for ev in (await c.get("/api/v1/events", params={"source_id": src["id"], "type": "file.changed"})).json():
                names.append((await c.get(f"/api/v1/events/{ev['id']}")).json()["payload"]["item"]["name"])
            assert Counter(names) == Counter(f"f{i}.txt" for i in range(FILES))
        finally:
            hub.stop()


async def _until(check: object, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
