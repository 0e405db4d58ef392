"""What a run measured: latencies, throughputs, CPU, and what hub's database and log say."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubbench import REPO_DIR
from hubbench.load import LoadResult


@dataclass(frozen=True)
class Arrival:
    at: float
    key: str
    event_id: str


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def latency_summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_ms": ms(percentile(values, 0.50)),
        "p90_ms": ms(percentile(values, 0.90)),
        "p99_ms": ms(percentile(values, 0.99)),
        "max_ms": ms(max(values) if values else None),
    }


def ingest_figures(load: LoadResult) -> dict[str, Any]:
    accepted = load.accepted()
    return {
        "sent": len(load.samples),
        "accepted": len(accepted),
        "statuses": load.statuses(),
        "errors": load.errors(),
        "elapsed_s": round(load.elapsed, 3),
        "req_per_s": round(len(accepted) / load.elapsed, 1) if load.elapsed > 0 else None,
        "accept_latency": latency_summary([s.latency for s in accepted]),
        "client_cpu_s": round(load.client_cpu, 2),
    }


def delivery_figures(load: LoadResult, arrivals: Sequence[Arrival], complete: bool) -> dict[str, Any]:
    """Lost, duplicates and end-to-end latency of the events ``load`` got accepted."""
    sent_at = {s.event_id: s.sent_at for s in load.accepted() if s.event_id}
    first: dict[str, float] = {}
    keys_seen: Counter[str] = Counter()
    events_seen: Counter[str] = Counter()
    for a in arrivals:
        if a.event_id in sent_at:
            keys_seen[a.key] += 1
            events_seen[a.event_id] += 1
            if a.event_id not in first or a.at < first[a.event_id]:
                first[a.event_id] = a.at
    e2e = [first[e] - sent_at[e] for e in first]
    last = max(first.values()) if first else None
    during = sum(1 for at in first.values() if at <= load.finished_at)
    span = (last - load.started_at) if last is not None else None
    return {
        "all_received": complete,
        "delivered": len(first),
        "lost": len(sent_at) - len(first),
        "duplicates": sum(n - 1 for n in keys_seen.values()),
        # one route: an event should reach the receiver once, whatever its key
        "event_repeats": sum(n - 1 for n in events_seen.values()),
        "delivered_per_s": round(len(first) / span, 1) if span else None,
        "delivered_during_ingest": during,
        "drain_after_ingest_s": round(last - load.finished_at, 3) if last is not None else None,
        "e2e_latency": latency_summary(e2e),
    }


def foreign_arrivals(arrivals: Sequence[Arrival], known_event_ids: set[str]) -> int:
    """Deliveries of events no phase of ours got a 202 for (retries after a lost answer, strays)."""
    return sum(1 for a in arrivals if a.event_id not in known_event_ids)


def parse_metrics(text: str) -> dict[str, float]:
    """The hub_* counters of a Prometheus text page (without the *_created series)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("hub_") and "_created" not in line.split(" ")[0]:
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def sqlite_stats(path: Path) -> dict[str, Any]:
    """What hub's own tables say about the run: deliveries by status, attempts by outcome, retries."""
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in conn.execute(sql)}

        return {
            "events": conn.execute("SELECT count(*) FROM events").fetchone()[0],
            "deliveries_by_status": grouped("SELECT status, count(*) FROM deliveries GROUP BY status"),
            "attempts_by_outcome": grouped("SELECT outcome, count(*) FROM attempts GROUP BY outcome"),
            "deliveries_retried": conn.execute("SELECT count(*) FROM deliveries WHERE attempts > 1").fetchone()[0],
            "attempt_errors": grouped(
                "SELECT coalesce(error, status_code), count(*) FROM attempts WHERE outcome != 'delivered' "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
            ),
            "db_bytes": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")),
        }
    finally:
        conn.close()


def log_summary(path: Path) -> dict[str, Any]:
    """Count hub's log lines by level and keep a few distinct messages (the bench runs it at WARNING)."""
    levels: Counter[str] = Counter()
    samples: list[str] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        try:
            rec = json.loads(line)
            level, msg = str(rec.get("level", "?")), f"{rec.get('logger', '')}: {rec.get('msg', '')}"
            if rec.get("cause"):
                msg += f" ({rec['cause']})"
        except (ValueError, AttributeError):
            level, msg = "text", line
        levels[level] += 1
        msg = msg[:300]
        if msg not in samples and len(samples) < 8:
            samples.append(msg)
    return {"lines_by_level": dict(levels), "first_messages": samples}


def git_state() -> dict[str, Any]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, cwd=REPO_DIR, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": run("git", "rev-parse", "HEAD") or None,
        "hub_dirty": bool(run("git", "status", "--porcelain", "--", "hub")),
    }


def cpu_delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 2)


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot, all cores (Linux /proc/stat)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


async def host_busy_cores(max_wait: float) -> float | None:
    """Cores the host keeps busy (sampled over 1 s), waiting up to ``max_wait`` s for it to drop under 0.25."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy_seconds(), time.perf_counter()
        await asyncio.sleep(1.0)
        b1, t1 = machine_busy_seconds(), time.perf_counter()
        if b0 is None or b1 is None:
            return None
        busy = round((b1 - b0) / (t1 - t0), 2)
        if busy < 0.25 or time.monotonic() >= deadline:
            return busy
        print(f"host busy ({busy:.2f} cores); waiting for it to quiet down ...", flush=True)


@dataclass(frozen=True)
class CpuSnap:
    wall: float
    machine: float | None
    ours: dict[str, float | None]


def cpu_snap(meters: dict[str, Callable[[], float | None]]) -> CpuSnap:
    ours = {name: meter() for name, meter in meters.items()}
    ours["client"] = time.process_time()
    return CpuSnap(time.perf_counter(), machine_busy_seconds(), ours)


def cpu_report(a: CpuSnap, b: CpuSnap) -> dict[str, float | None]:
    """CPU seconds each of our processes used between two snapshots, and what everything else used.

    ``other`` is the machine's busy time minus ours: other programs on the host, which make the
    figures noisy when they are not near 0.
    """
    out: dict[str, float | None] = {"window_s": round(b.wall - a.wall, 3)}
    for name in a.ours:
        out[name] = cpu_delta(a.ours[name], b.ours[name])
    ours = [v for k, v in out.items() if k != "window_s"]
    if a.machine is not None and b.machine is not None and None not in ours:
        other = (b.machine - a.machine) - sum(v for v in ours if v is not None)
        out["other"] = round(max(other, 0.0), 2)
        out["other_cores"] = round(max(other, 0.0) / max(b.wall - a.wall, 1e-9), 2)
    return out


def per_event_us(cpu_seconds: float | None, events: int) -> float | None:
    return None if cpu_seconds is None or events <= 0 else round(cpu_seconds * 1e6 / events, 1)
