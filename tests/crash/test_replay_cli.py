"""`hub replay` against a running hub: bulk retry of dead letters with a progress bar."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.crash.harness import Burst, Deployment, client, issue_payloads, received_events, setup_pipeline
from tests.helpers import ADMIN_KEY
from tests.receiver import Receiver, serve_receiver

pytestmark = pytest.mark.slow


async def test_hub_replay_retries_dead_letters(tmp_path: Path) -> None:
    hub = Deployment(tmp_path, {})
    async with serve_receiver(Receiver(script=[(400, {})] * 5)) as rx, client(hub.base) as c:
        try:
            await hub.start()
            burst = Burst(c, await setup_pipeline(c, rx), issue_payloads(5))
            await burst.run(concurrency=1)
            for _ in range(100):
                if len((await c.get("/api/v1/dead-letters")).json()) == 5:
                    break
                await asyncio.sleep(0.05)
            assert received_events(rx) == set()
            proc = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "hub", "replay", "--url", hub.base, "--error", "HTTP 400"],
                env={**os.environ, "HUB_API_KEY": ADMIN_KEY},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert proc.returncode == 0, proc.stderr
            assert "5 dead letters due again" in proc.stderr
            for _ in range(100):
                if received_events(rx) == set(burst.accepted.values()):
                    break
                await asyncio.sleep(0.05)
            assert received_events(rx) == set(burst.accepted.values())
            bad = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "hub", "replay", "--url", hub.base, "--key", "wrong"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert bad.returncode == 1 and "401" in bad.stderr
        finally:
            hub.stop()
