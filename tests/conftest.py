"""Fixtures: an app with its lifespan on a fresh SQLite database, an API client, a local receiver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hub.app import create_app
from hub.config import Settings
from hub.ingest.fastpath import IngestFastPath
from hub.runtime import Runtime
from tests.helpers import ADMIN_KEY, AUTH, GITHUB_SECRET, github_issue, github_request
from tests.pg import create_database, drop_database, sqlalchemy_url
from tests.receiver import Receiver, serve_receiver


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "bootstrap_admin_key": ADMIN_KEY,
        "secret_key": "test-secret-key-with-enough-length",
        "log_json": False,
        "poll_interval": 0.2,
        "delivery_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A throwaway database on the real Postgres, as a SQLAlchemy URL."""
    name = await create_database()
    try:
        yield sqlalchemy_url(name)
    finally:
        await drop_database(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(params=[True, False], ids=["fastpath", "route"])
def fast_ingest(request: pytest.FixtureRequest) -> bool:
    """Ingest through the ASGI fast path and through the documented FastAPI route: same answers."""
    return bool(request.param)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    rt: Runtime = app.state.runtime
    return rt


@pytest.fixture
async def client(app: FastAPI, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """Through the ingest fast path, as `hub serve` runs (or the FastAPI route, when a test asks)."""
    fast = request.getfixturevalue("fast_ingest") if "fast_ingest" in request.fixturenames else True
    transport = httpx.ASGITransport(app=IngestFastPath(app) if fast else app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test", headers=AUTH) as c:
        yield c


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver(Receiver()) as r:
        yield r


async def create(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def fire(client: httpx.AsyncClient, source_id: str, number: int = 1, action: str = "opened") -> str:
    """A signed GitHub ``issues`` webhook for issue ``number``: accepted (202); returns the event id."""
    body, headers = github_request(github_issue(number, action))
    resp = await client.post(f"/hooks/{source_id}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])


async def create_pipeline(
    client: httpx.AsyncClient, target: dict[str, Any], events: list[str] | None = None, mapping: Any = None
) -> dict[str, Any]:
    """Create a GitHub source, a target and a route; returns their ids."""
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "acme", "secret": GITHUB_SECRET})
    tgt = await create(client, "/api/v1/targets", target)
    route_body: dict[str, Any] = {"source_id": src["id"], "target_id": tgt["id"], "events": events or ["*"]}
    if mapping is not None:
        route_body["mapping"] = mapping
    rte = await create(client, "/api/v1/routes", route_body)
    return {"source_id": src["id"], "target_id": tgt["id"], "route_id": rte["id"]}


@pytest.fixture
def pipeline(client: httpx.AsyncClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(target: dict[str, Any], events: list[str] | None = None, mapping: Any = None) -> dict[str, Any]:
        return await create_pipeline(client, target, events, mapping)

    return make


@contextlib.asynccontextmanager
async def running_app(settings: Settings, fast: bool = True) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app started with its lifespan and an admin client: through the ingest fast path, as `hub serve`
    runs, or (``fast=False``) through the documented FastAPI route."""
    application = create_app(settings)
    transport = httpx.ASGITransport(app=IngestFastPath(application) if fast else application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://hub.test", headers=AUTH) as c,
    ):
        yield application, c


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
