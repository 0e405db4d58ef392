"""The README's "Scaled mode" recipe without Docker, run as written: `hub migrate`, `hub serve`, two
`hub worker` on the real Postgres and Redis; a signed webhook is delivered end to end.

Only the values of the exported variables are this test's own (a throwaway database, this run's Redis
database, a free port): the commands are the README's lines."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers import github_issue, github_request
from tests.pg import fresh_redis_db
from tests.receiver import Receiver, free_port, serve_receiver

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN = "readme-recipe-admin-key-0123"


def readme_recipe() -> tuple[list[str], str]:
    """The names the recipe exports, and its commands (the lines that are not exports)."""
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index("Without Docker") :]
    block = re.search(r"```bash\n(.*?)```", after, re.S)
    assert block is not None, "the scaled recipe's bash block is gone"
    names: list[str] = []
    commands: list[str] = []
    for line in block.group(1).splitlines():
        code = line.split("#", 1)[0].strip()
        if code.startswith("export "):
            names += re.findall(r"\b([A-Z_]+)=", code)
        elif code:
            commands.append(code)
    return names, "\n".join(commands)


def _group_commands(pgid: int) -> list[str]:
    """Command lines of the live processes of our process group (the recipe's)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue
    return found


async def _poll(check: Callable[[], bool], what: str, recipe: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert recipe.poll() is None, f"the recipe stopped:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not happen:\n{log.read_text()[-3000:]}"
        await asyncio.sleep(0.1)


async def test_the_readme_scaled_recipe_delivers_a_webhook(tmp_path: Path, pg_database: str) -> None:
    names, commands = readme_recipe()
    assert {"HUB_DATABASE_URL", "HUB_REDIS_URL", "HUB_SECRET_KEY"} <= set(names)
    assert commands.splitlines()[0] == "hub migrate"
    assert commands.count("hub worker &") == 2 and "hub serve" in commands
    port = free_port()
    assert "--port 8000" in commands
    commands = commands.replace("--port 8000", f"--port {port}")
    values = {
        "HUB_DATABASE_URL": pg_database,
        "HUB_REDIS_URL": fresh_redis_db(),
        "HUB_SECRET_KEY": "readme-recipe-secret-key-0123",
        "HUB_BOOTSTRAP_ADMIN_KEY": ADMIN,
    }
    assert set(names) <= set(values), f"the recipe exports {names}: give the test a value for each"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({name: values[name] for name in names}, HUB_LOG_LEVEL="WARNING", HUB_DATA_DIR=str(tmp_path))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's `hub`
    log = tmp_path / "recipe.log"
    with log.open("wb") as out:
        recipe = subprocess.Popen(
            ["bash", "-euc", commands + "\nwait"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await _poll(ready, "GET /readyz answering 200", recipe, log)
        workers = [c for c in _group_commands(recipe.pid) if c.rstrip().endswith("hub worker")]
        assert len(workers) == 2, _group_commands(recipe.pid)
        async with (
            serve_receiver(Receiver()) as rx,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10) as c,
        ):
            from tests.conftest import create_pipeline

            ids = await create_pipeline(c, {"kind": "webhook", "name": "rx", "url": rx.url})
            body, headers = github_request(github_issue(7))
            accepted = await c.post(f"/hooks/{ids['source_id']}", content=body, headers=headers)
            assert accepted.status_code == 202, accepted.text
            await _poll(lambda: len(rx.requests) == 1, "the delivery", recipe, log)
            assert rx.requests[0].body["post"]["event_id"] == accepted.json()["event_id"]
            event = (await c.get(f"/api/v1/events/{accepted.json()['event_id']}")).json()
            assert event["status"] == "delivered"
        assert len([c for c in _group_commands(recipe.pid) if c.rstrip().endswith("hub worker")]) == 2
    finally:
        _stop_group(recipe)


def _stop_group(recipe: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the recipe's process group (bash, hub serve, both workers); SIGKILL what outlives 30 s."""
    os.killpg(recipe.pid, signal.SIGTERM)
    recipe.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _group_commands(recipe.pid):
        if time.monotonic() > deadline:
            os.killpg(recipe.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
