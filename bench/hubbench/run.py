"""One bench run: hub (burst, idle, open loop), Node-RED (burst), the floor (burst), in that order."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubbench import HOST
from hubbench.figures import (
    Arrival,
    cpu_report,
    cpu_snap,
    delivery_figures,
    foreign_arrivals,
    git_state,
    host_busy_cores,
    ingest_figures,
    latency_summary,
    log_summary,
    parse_metrics,
    per_event_us,
    sqlite_stats,
)
from hubbench.hubs import HUB_MODES, System, start_embedded
from hubbench.load import LoadResult, Webhook, fire, fire_open, make_webhooks, run_idle
from hubbench.nodered import start_node_red
from hubbench.procs import Proc, start_role, wait_http

StartSystem = Callable[[argparse.Namespace, Path, str], Awaitable[System]]


@dataclass
class Phases:
    """The webhooks of every phase, made once: hub, Node-RED and the floor get the very same bytes."""

    warmup: list[Webhook]
    burst: list[Webhook]
    idle: list[Webhook]
    open: list[Webhook]


class ReceiverClient:
    def __init__(self, port: int) -> None:
        import httpx

        self._http = httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30.0)

    async def count(self) -> int:
        return int((await self._http.get("/count")).json()["count"])

    async def records(self) -> list[Arrival]:
        rows = (await self._http.get("/records")).json()["records"]
        return [Arrival(float(at), str(key), str(evt)) for at, key, evt in rows]

    async def wait_for(self, event_ids: set[str], timeout: float) -> tuple[list[Arrival], bool]:
        """Poll (cheaply) until every one of ``event_ids`` arrived or ``timeout`` ran out; all records."""
        deadline = time.monotonic() + timeout
        seen_count = -1
        while True:
            count = await self.count()
            if count != seen_count and count >= len(event_ids):
                seen_count = count
                records = await self.records()
                if event_ids <= {r.event_id for r in records}:
                    return records, True
            if time.monotonic() > deadline:
                return await self.records(), False
            await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        await self._http.aclose()


def _ids(result: LoadResult) -> set[str]:
    return {s.event_id for s in result.accepted() if s.event_id}


async def bench_system(
    args: argparse.Namespace,
    workdir: Path,
    phases: Phases,
    start: StartSystem,
    label: str,
    idle: bool = True,
    open_loop: bool = True,
) -> dict[str, Any]:
    """Start a receiver and the system, warm up, burst, drain; then (optionally) idle and open loop."""
    receiver, receiver_port = start_role("receiver", workdir)
    system: System | None = None
    rc = ReceiverClient(receiver_port)
    out: dict[str, Any] = {}
    try:
        await wait_http(f"http://{HOST}:{receiver_port}/count", receiver)
        system = await start(args, workdir, f"http://{HOST}:{receiver_port}/")
        out["system"] = system.mode
        port = system.port
        meters = {"system": system.cpu_seconds, "receiver": receiver.cpu_seconds}

        def requests(webhooks: list[Webhook]) -> list[bytes]:
            return [w.request(system.hook_path, port) for w in webhooks]

        known: set[str] = set()
        if phases.warmup:  # connections, lazy imports, template compilation; not counted
            warm = await fire(port, requests(phases.warmup), args.concurrency, args.request_timeout)
            known |= _ids(warm)
            _, ok = await rc.wait_for(_ids(warm), args.drain_timeout)
            out["warmup"] = {**ingest_figures(warm), "all_received": ok}

        print(f"{label}: burst of {len(phases.burst)} webhooks at concurrency {args.concurrency} ...", flush=True)
        snap0 = cpu_snap(meters)
        burst = await fire(port, requests(phases.burst), args.concurrency, args.request_timeout)
        snap1 = cpu_snap(meters)
        known |= _ids(burst)
        arrivals, complete = await rc.wait_for(_ids(burst), args.drain_timeout)
        snap2 = cpu_snap(meters)
        await asyncio.sleep(args.settle)  # late duplicates
        arrivals = await rc.records()
        figures = delivery_figures(burst, arrivals, complete)
        to_drained = cpu_report(snap0, snap2)
        out["burst"] = {
            **ingest_figures(burst),
            **figures,
            "cpu_s_ingest": cpu_report(snap0, snap1),
            "cpu_s_to_drained": to_drained,
            "system_cpu_us_per_webhook": per_event_us(to_drained.get("system"), figures["delivered"]),
        }

        if idle and phases.idle and complete:
            print(f"{label}: {len(phases.idle)} webhooks one at a time, {args.idle_gap * 1000:.0f} ms apart ...")
            result = await run_idle(port, requests(phases.idle), args.idle_gap, args.request_timeout)
            known |= _ids(result)
            arrivals, done = await rc.wait_for(_ids(result), args.drain_timeout)
            fig = delivery_figures(result, arrivals, done)
            out["idle"] = {
                "sent": len(result.samples),
                "accepted": len(result.accepted()),
                "accept_latency": latency_summary([s.latency for s in result.accepted()]),
                **{k: fig[k] for k in ("lost", "duplicates", "event_repeats", "e2e_latency")},
            }
        elif idle and phases.idle:
            print(f"{label}: idle skipped, the burst did not drain (it would measure the backlog)", flush=True)

        if open_loop and phases.open and complete:
            print(f"{label}: open loop, {args.rate:g} webhooks/s for {len(phases.open) / args.rate:g} s ...")
            snap0 = cpu_snap(meters)
            result = await fire_open(port, requests(phases.open), args.rate, args.request_timeout)
            known |= _ids(result)
            arrivals, done = await rc.wait_for(_ids(result), args.drain_timeout)
            snap1 = cpu_snap(meters)
            fig = delivery_figures(result, arrivals, done)
            out["open"] = {
                **ingest_figures(result),
                "rate": args.rate,
                "generator_max_lag_ms": round(result.max_lag * 1000, 2),
                "connections": result.connections,
                **{k: fig[k] for k in ("all_received", "lost", "duplicates", "event_repeats", "e2e_latency")},
                "cpu_s": cpu_report(snap0, snap1),
            }
        elif open_loop and phases.open:
            print(f"{label}: open loop skipped, the burst did not drain", flush=True)

        await asyncio.sleep(args.settle)
        arrivals = await rc.records()
        out["receiver"] = {
            "requests": len(arrivals),
            "distinct_keys": len({a.key for a in arrivals}),
            "foreign": foreign_arrivals(arrivals, known),
        }
        if system.name == "hub":
            with contextlib.suppress(Exception):
                import httpx

                async with httpx.AsyncClient(timeout=10.0) as client:
                    out["hub_metrics"] = parse_metrics((await client.get(f"{system.base_url}/metrics")).text)
    finally:
        await rc.aclose()
        if system is not None:
            out["exit"] = system.stop()
        receiver.stop()
    if system is not None:
        if system.sqlite_path is not None:
            out["hub_db"] = sqlite_stats(system.sqlite_path)
        out["log"] = {p.name: log_summary(p.log_path) for p in system.procs}
    return out


async def bench_floor(args: argparse.Namespace, workdir: Path, phases: Phases, path: str) -> dict[str, Any]:
    floor, port = start_role("floor", workdir)
    try:
        await wait_http(f"http://{HOST}:{port}/", floor)

        def requests(webhooks: list[Webhook]) -> list[bytes]:  # the very same bytes as hub got, Host aside
            return [w.request(path, port) for w in webhooks]

        if phases.warmup:
            await fire(port, requests(phases.warmup), args.concurrency, args.request_timeout)
        burst = requests(phases.burst)
        runs: list[tuple[LoadResult, dict[str, float | None]]] = []
        for _ in range(args.floor_reps):
            snap0 = cpu_snap({"floor": floor.cpu_seconds})
            result = await fire(port, burst, args.concurrency, args.request_timeout)
            runs.append((result, cpu_report(snap0, cpu_snap({"floor": floor.cpu_seconds}))))
    finally:
        floor.stop()
    # a floor burst is short: repeat it and keep the run of median throughput
    ranked = sorted(runs, key=lambda r: r[0].elapsed)
    result, cpu = ranked[len(ranked) // 2]
    return {
        **ingest_figures(result),
        "req_per_s_runs": [round(len(r.accepted()) / r.elapsed, 1) for r, _ in runs],
        "cpu_s_ingest": cpu,
    }


def make_phases(args: argparse.Namespace) -> Phases:
    counts = [args.warmup, args.n, args.idle_n, int(args.rate * args.duration) if args.rate > 0 else 0]
    made: list[list[Webhook]] = []
    first = 1
    for count in counts:
        made.append(make_webhooks(first, count))
        first += count
    return Phases(*made)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-", dir=args.tmpdir))
    phases = make_phases(args)
    body_sizes = [len(w.body) for w in phases.burst]
    body_mean = sum(body_sizes) // max(len(body_sizes), 1)
    print(
        f"hub bench: mode {args.mode}, n={args.n}, concurrency={args.concurrency}, body ~{body_mean} bytes, "
        f"open loop {args.rate:g}/s x {args.duration:g} s, workdir {workdir}",
        flush=True,
    )
    busy_before = await host_busy_cores(args.wait_quiet)
    out: dict[str, Any] = {}
    try:
        out["hub"] = await bench_system(args, workdir, phases, HUB_MODES[args.mode], f"hub ({args.mode})")
        if args.mode == "scaled":  # the reference for CPU per webhook: the embedded default, same load
            print("reference: the embedded default, same burst ...", flush=True)
            ref = await bench_system(args, workdir, phases, start_embedded, "hub (embedded)", False, False)
            out["embedded_reference"] = ref
        if not args.no_node_red:
            out["node_red"] = await bench_system(args, workdir, phases, start_node_red, "node-red", False, False)
        print("floor: the same burst against a bare uvicorn app ...", flush=True)
        out["floor"] = await bench_floor(args, workdir, phases, "/hooks/src_" + "0" * 24)  # as long as hub's
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {
            "mode": args.mode,
            "n": args.n,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "idle_n": args.idle_n,
            "idle_gap_s": args.idle_gap,
            "rate": args.rate,
            "duration_s": args.duration,
            "hub_env": args.hub_env,
            "floor_reps": args.floor_reps,
            "hub_profiled": args.profile_hub is not None,
            "host_busy_cores_before": busy_before,
            "body_bytes_mean": body_mean,
            "workers": args.workers,
        },
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **git_state(),
        },
        **out,
    }


__all__ = ["Proc", "run"]
