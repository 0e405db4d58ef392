"""Starting what is measured: hub in a mode (``HUB_MODES``), configured with a source, a webhook target
pointing at the receiver and a route. Node-RED is in ``nodered.py``; both give a :class:`System`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubbench import ADMIN_KEY, EVENT, HOST, SECRET
from hubbench.procs import Proc, free_port, wait_http


@dataclass
class System:
    """Something that takes webhooks on ``hook_path`` at ``port`` and delivers them to the receiver."""

    name: str  # "hub" or "node-red"
    mode: str
    port: int
    procs: list[Proc]
    hook_path: str = ""
    admin_key: str = ""
    sqlite_path: Path | None = None  # hub embedded: the database file, read after the run
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # e.g. drop the scaled mode's database

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float | None:
        values = [p.cpu_seconds() for p in self.procs]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def stop(self) -> dict[str, int | None]:
        codes = {p.name: p.stop() for p in reversed(self.procs)}
        for cleanup in self.cleanups:
            with contextlib.suppress(Exception):
                cleanup()
        return codes


Starter = Callable[[argparse.Namespace, Path, str], Awaitable[System]]


def hub_command(profile: Path | None = None) -> list[str]:
    """The `hub` command of this interpreter's environment; under cProfile when ``profile`` is given."""
    script = Path(sys.executable).parent / "hub"
    if not script.exists():
        script = Path(shutil.which("hub") or "")
    if not script.is_file():
        return [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), "-m", "hub"]
    return [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)] if profile else [str(script)]


def hub_env(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(data_dir), HUB_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY, HUB_LOG_LEVEL="WARNING")
    for item in args.hub_env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def _stop_signal(args: argparse.Namespace) -> signal.Signals:
    # uvicorn re-raises the signal that stopped it: after SIGTERM the process dies before cProfile
    # writes its file, after SIGINT it unwinds through KeyboardInterrupt and cProfile writes it.
    return signal.SIGINT if args.profile_hub else signal.SIGTERM


async def start_embedded(args: argparse.Namespace, workdir: Path, receiver_url: str) -> System:
    """`hub serve` on SQLite in a fresh data dir, with its embedded delivery worker."""
    data_dir = workdir / "hub-data"
    port = free_port()
    argv = [*hub_command(args.profile_hub), "serve", "--host", HOST, "--port", str(port)]
    proc = Proc("hub-serve", argv, workdir / "hub-serve.log", hub_env(args, data_dir), _stop_signal(args))
    system = System("hub", "embedded", port, [proc], admin_key=ADMIN_KEY, sqlite_path=data_dir / "hub.db")
    try:
        await wait_http(f"{system.base_url}/healthz", proc)
        system.hook_path = f"/hooks/{await configure_hub(system, receiver_url)}"
    except BaseException:
        system.stop()
        raise
    return system


PG_DSN = os.environ.get("HUB_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HUB_BENCH_REDIS", "")  # empty: a redis-server of the bench's own


async def _redis(workdir: Path) -> tuple[str, Callable[[], None]]:
    """HUB_BENCH_REDIS (flushed), or a private redis-server on a free port: the shared server's databases
    belong to whichever test run claimed them."""
    if REDIS_URL:
        subprocess.run(["redis-cli", "-u", REDIS_URL, "flushdb"], check=True, capture_output=True)
        return REDIS_URL, lambda: None
    port = free_port()
    argv = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", HOST, "--save", ""]
    proc = Proc("redis", [*argv, "--appendonly", "no", "--dir", str(workdir)], workdir / "redis.log")
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"redis-server did not start:\n{proc.log_tail()}")
        await asyncio.sleep(0.05)
    return f"redis://{HOST}:{port}/0", lambda: proc.stop() and None


def _psql(sql: str) -> None:
    subprocess.run(["psql", PG_DSN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


async def start_scaled(args: argparse.Namespace, workdir: Path, receiver_url: str) -> System:
    """`hub serve` (API only) + ``--workers`` `hub worker` processes on a fresh Postgres database and Redis."""
    db = f"hub_bench_{os.getpid()}_{int(time.time())}"
    redis_url, stop_redis = await _redis(workdir)
    _psql(f'CREATE DATABASE "{db}"')
    env = hub_env(args, workdir / "hub-data")
    env.update(
        HUB_DATABASE_URL=f"{PG_DSN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{db}",
        HUB_REDIS_URL=redis_url,
        HUB_SECRET_KEY="bench-secret-key-0123456789",
    )
    for item in args.hub_env:  # --hub-env wins over the defaults above
        name, _, value = item.partition("=")
        env[name] = value
    port = free_port()
    drop = f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'
    system = System("hub", "scaled", port, [], admin_key=ADMIN_KEY, cleanups=[lambda: _psql(drop), stop_redis])
    try:
        migrate = subprocess.run([*hub_command(), "migrate"], env=env, capture_output=True, text=True, timeout=120)
        if migrate.returncode != 0:
            raise RuntimeError(f"hub migrate failed: {migrate.stderr[-2000:]}")
        api = Proc(
            "hub-serve",
            [*hub_command(args.profile_hub), "serve", "--host", HOST, "--port", str(port)],
            workdir / "hub-serve.log",
            env,
            _stop_signal(args),
        )
        system.procs.append(api)
        for i in range(args.workers or 1):
            system.procs.append(
                Proc(f"hub-worker-{i}", [*hub_command(), "worker"], workdir / f"hub-worker-{i}.log", env)
            )
        await wait_http(f"{system.base_url}/readyz", api)
        system.hook_path = f"/hooks/{await configure_hub(system, receiver_url)}"
    except BaseException:
        system.stop()
        raise
    return system


HUB_MODES: dict[str, Starter] = {"embedded": start_embedded, "scaled": start_scaled}


async def configure_hub(hub: System, receiver_url: str) -> str:
    """Create the source, the webhook target and the route; return the source id."""
    import httpx

    auth = {"Authorization": f"Bearer {hub.admin_key}"}
    async with httpx.AsyncClient(base_url=hub.base_url, headers=auth, timeout=10.0) as api:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = await api.post(path, json=body)
            if resp.status_code >= 300:
                raise RuntimeError(f"POST {path} answered {resp.status_code}: {resp.text}")
            out: dict[str, Any] = resp.json()
            return out

        source = await post("/api/v1/sources", {"connector": "github", "name": "bench", "secret": SECRET})
        target = await post("/api/v1/targets", {"kind": "webhook", "name": "receiver", "url": receiver_url})
        await post("/api/v1/routes", {"source_id": source["id"], "target_id": target["id"], "events": [EVENT]})
    return str(source["id"])
