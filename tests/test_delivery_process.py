"""`hub serve` delivers from a second process (hub/delivery/process.py): real processes, a real receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from hub.app import create_app
from hub.config import Settings
from hub.db import plain_sqlite
from hub.delivery.embedded import EmbeddedWorker
from hub.delivery.process import DeliveryProcess
from hub.ingest.fastpath import IngestFastPath
from hub.ingest.sqlite_writer import SqliteIngestWriter
from hub.metrics import Family, merge
from hub.runtime import Runtime
from tests.conftest import make_settings
from tests.crash.harness import Deployment, client, setup_pipeline
from tests.helpers import AUTH, github_issue, github_request
from tests.procs import HubProcess
from tests.receiver import Receiver, serve_receiver


def delivery_pid(parent: int) -> int | None:
    """The delivery process under ``parent``, if one runs."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"hub.delivery.process_main" in cmdline:
            return int(entry)
    return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def until(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[HubProcess, str]]:
    """`hub serve` on the embedded default, as started by default (with its delivery process)."""
    deployment = Deployment(tmp_path, {})
    try:
        await deployment.start()
        yield deployment.api, deployment.base
    finally:
        deployment.stop()


async def fire(c: httpx.AsyncClient, source_id: str, number: int) -> str:
    body, headers = github_request(github_issue(number))
    resp = await c.post(f"/hooks/{source_id}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["event_id"])


def events_at(rx: Receiver) -> set[str]:
    return {r.body["post"]["event_id"] for r in rx.requests if isinstance(r.body, dict)}


async def test_serve_delivers_from_its_delivery_process_and_reports_its_counters(
    served: tuple[HubProcess, str],
) -> None:
    hub, base = served
    assert hub.proc is not None
    child = delivery_pid(hub.proc.pid)
    assert child is not None, "hub serve runs a delivery process"
    async with serve_receiver(Receiver()) as rx, client(base) as c:
        ready = (await c.get("/readyz")).json()
        assert ready["checks"]["delivery_process"] == "ok"
        source = await setup_pipeline(c, rx)
        event = await fire(c, source, 1)
        await until(lambda: event in events_at(rx))
        metrics = (await c.get("/metrics")).text
    # counted where it was sent (the delivery process), shown by the API process's /metrics
    assert 'hub_deliveries_total{outcome="delivered"} 1.0' in metrics
    assert "hub_events_received_total" in metrics


async def test_a_changed_target_is_used_at_once_by_the_delivery_process(served: tuple[HubProcess, str]) -> None:
    """The delivery process's configuration cache reloads when the API changes something, not after its TTL."""
    _, base = served
    async with serve_receiver(Receiver()) as old, serve_receiver(Receiver()) as new, client(base) as c:
        source = await setup_pipeline(c, old)
        first = await fire(c, source, 1)
        await until(lambda: first in events_at(old))  # the delivery process has the old target cached now
        target_id = (await c.get("/api/v1/targets")).json()[0]["id"]
        resp = await c.patch(f"/api/v1/targets/{target_id}", json={"url": new.url})
        assert resp.status_code == 200, resp.text
        second = await fire(c, source, 2)
        await until(lambda: second in events_at(new) | events_at(old))
        assert second in events_at(new) and second not in events_at(old)


async def test_a_killed_delivery_process_is_started_again_and_delivers(served: tuple[HubProcess, str]) -> None:
    hub, base = served
    assert hub.proc is not None
    parent = hub.proc.pid
    child = delivery_pid(parent)
    assert child is not None
    async with serve_receiver(Receiver()) as rx, client(base) as c:
        source = await setup_pipeline(c, rx)
        os.kill(child, signal.SIGKILL)
        event = await fire(c, source, 1)  # stored while no delivery process runs
        await until(lambda: (pid := delivery_pid(parent)) is not None and pid != child)
        await until(lambda: event in events_at(rx))
        assert (await c.get("/readyz")).status_code == 200


async def test_the_delivery_process_dies_with_the_api_process(served: tuple[HubProcess, str]) -> None:
    hub, _ = served
    assert hub.proc is not None
    child = delivery_pid(hub.proc.pid)
    assert child is not None
    hub.kill9()
    await until(lambda: not alive(child), timeout=10)


def test_metrics_of_two_processes_add_up_and_gauges_keep_ours() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    for registry, sent, depth in ((ours, 0, 7), (theirs, 3, 0)):
        deliveries = Counter("hub_deliveries", "d", ["outcome"], registry=registry)
        if sent:
            deliveries.labels("delivered").inc(sent)
        Counter("hub_events_received", "e", registry=registry).inc(2 if registry is ours else 0)
        Gauge("hub_queue_depth", "q", registry=registry).set(depth)
    their_only = Counter("hub_events_purged", "p", registry=theirs)
    their_only.inc(4)
    sent = [Family.from_json(Family.of(m).to_json()) for m in theirs.collect()]  # as the socket carries them
    merged = {
        m.name: {(s.name, tuple(s.labels.items())): s.value for s in m.samples} for m in merge(ours.collect(), sent)
    }
    assert merged["hub_deliveries"][("hub_deliveries_total", (("outcome", "delivered"),))] == 3
    assert merged["hub_events_received"][("hub_events_received_total", ())] == 2
    assert merged["hub_queue_depth"][("hub_queue_depth", ())] == 7
    assert merged["hub_events_purged"][("hub_events_purged_total", ())] == 4


def test_a_writer_waits_for_another_process_lock_in_short_steps(tmp_path: Path) -> None:
    """The API and delivery processes write in turn: a writer finding the lock taken tries again within
    a millisecond or two, instead of SQLite's busy handler (1, 2, 5, 10… ms sleeps)."""
    path = str(tmp_path / "db.sqlite")
    holder, writer = plain_sqlite.writer_connection(path), plain_sqlite.writer_connection(path)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")

    def release() -> None:
        time.sleep(0.05)
        holder.execute("COMMIT")

    threading.Thread(target=release).start()
    started = time.monotonic()
    with plain_sqlite.immediate(writer):
        waited = time.monotonic() - started
        assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 1, "it began after the holder committed"
        writer.execute("INSERT INTO t VALUES (2)")
    assert waited >= 0.04
    assert [r[0] for r in writer.execute("SELECT x FROM t ORDER BY x")] == [1, 2]


def test_a_writer_gives_up_when_the_lock_stays_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plain_sqlite, "BUSY_LIMIT", 0.05)
    path = str(tmp_path / "db.sqlite")
    holder, writer = plain_sqlite.writer_connection(path), plain_sqlite.writer_connection(path)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"), plain_sqlite.immediate(writer):
        pass
    assert time.monotonic() - started < 5
    holder.execute("ROLLBACK")


async def test_a_sigterm_to_the_group_stops_both_through_the_api_process(served: tuple[HubProcess, str]) -> None:
    """A service manager signals every process of the unit: the delivery process leaves its stop to the
    API process (which first stores what it received), and the API process stops it without restarting it."""
    hub, base = served
    assert hub.proc is not None
    child = delivery_pid(hub.proc.pid)
    assert child is not None
    os.kill(child, signal.SIGTERM)
    async with serve_receiver(Receiver()) as rx, client(base) as c:
        source = await setup_pipeline(c, rx)
        event = await fire(c, source, 1)
        await until(lambda: event in events_at(rx))
    assert delivery_pid(hub.proc.pid) == child, "still the same delivery process"
    assert await asyncio.to_thread(hub.terminate, 30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    await until(lambda: not alive(child), timeout=10)
    assert "starting it again" not in hub.log_path.read_text()


def test_webhooks_commit_with_fsync_and_delivery_outcomes_may_skip_it(tmp_path: Path) -> None:
    """SQLite's ``synchronous``: 2 = FULL (a commit waits for the WAL's fsync), 1 = NORMAL."""
    path = str(tmp_path / "db.sqlite")
    assert plain_sqlite.writer_connection(path).execute("PRAGMA synchronous").fetchone()[0] == 2
    assert plain_sqlite.writer_connection(path, "NORMAL").execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(ValueError):
        plain_sqlite.writer_connection(path, "OFF; DROP TABLE events")
    writer = SqliteIngestWriter(path)  # the API process's: it acknowledges webhooks
    try:
        assert writer._run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0], ()) == 2
    finally:
        writer.close()


async def deliver_one(settings: Settings, receiver: Receiver) -> type:
    """The app as `hub serve` builds it (a delivery process asked for), in this process: one webhook
    reaches the receiver; the type of the runtime's dispatcher."""
    application = create_app(settings, delivery_process=True)
    async with application.router.lifespan_context(application):
        rt: Runtime = application.state.runtime
        transport = httpx.ASGITransport(app=IngestFastPath(application))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test", headers=AUTH) as c:
            source = await setup_pipeline(c, receiver)
            event = await fire(c, source, 1)
            await until(lambda: event in events_at(receiver))
        return type(rt.dispatcher)


async def test_the_delivery_process_gets_the_api_process_settings_not_only_the_environment(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Settings built in code (a data dir no HUB_ variable names) reach the delivery process too."""
    dispatcher = await deliver_one(make_settings(tmp_path / "elsewhere"), receiver)
    assert dispatcher is DeliveryProcess


async def test_serve_delivers_in_its_own_process_when_the_second_cannot_start(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def cannot(self: DeliveryProcess) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(DeliveryProcess, "_spawn", cannot)
    assert await deliver_one(make_settings(tmp_path), receiver) is EmbeddedWorker
    assert "the delivery process did not start; delivering in the API process" in caplog.text
