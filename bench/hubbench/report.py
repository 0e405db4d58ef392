"""The verdict (each bar of issue 11, pass or fail), the table, and the JSON file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hubbench import BENCH_DIR

BAR_NODE_RED = 2.0  # embedded delivered/s >= 2 x Node-RED's, 0 lost, 0 duplicates
BAR_FLOOR = 0.25  # durable ingest (embedded) >= 0.25 x the bare ASGI floor
BAR_RATE = 500.0  # the open-loop bars are for 500 webhooks/s
BAR_E2E_P50_MS = 15.0
BAR_E2E_P99_MS = 100.0
BAR_ACK_P99_MS = 50.0
BAR_SCALED_CPU = 1.3  # scaled: hub CPU per webhook <= 1.3 x embedded (Postgres and Redis apart)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _clean(run: dict[str, Any]) -> bool:
    """0 lost and 0 duplicates in every phase of a system's run (and the burst drained)."""
    phases = [run[p] for p in ("burst", "idle", "open") if p in run]
    return (
        bool(phases)
        and run["burst"].get("all_received", False)
        and all(
            ph.get("lost", 0) == 0 and ph.get("duplicates", 0) == 0 and ph.get("event_repeats", 0) == 0 for ph in phases
        )
    )


def verdict(res: dict[str, Any]) -> dict[str, Any]:
    mode = res["config"]["mode"]
    hub = res["hub"]
    embedded = hub if mode == "embedded" else res.get("embedded_reference", {})
    bars: list[dict[str, Any]] = []

    def bar(name: str, value: Any, limit: str, ok: bool | None, note: str = "") -> None:
        bars.append({"bar": name, "value": value, "limit": limit, "pass": ok, "note": note})

    nr = res.get("node_red")
    hub_dps = embedded.get("burst", {}).get("delivered_per_s")
    if nr is None:
        bar("delivered/s vs Node-RED", None, f">= {BAR_NODE_RED:g}x", None, "not measured (--no-node-red)")
    else:
        x = _ratio(hub_dps, nr["burst"].get("delivered_per_s"))
        ok = x is not None and x >= BAR_NODE_RED and _clean(embedded)
        bar("delivered/s vs Node-RED (embedded, 0 lost, 0 dup)", x, f">= {BAR_NODE_RED:g}x", ok)
    x = _ratio(embedded.get("burst", {}).get("req_per_s"), res["floor"]["req_per_s"])
    bar("durable ingest vs bare ASGI floor (embedded)", x, f">= {BAR_FLOOR:g}x", x is not None and x >= BAR_FLOOR)
    open_ = hub.get("open")
    rate = res["config"]["rate"]
    if open_ is None or rate < BAR_RATE:
        why = "not measured" + (f" (open loop ran at {rate:g}/s)" if open_ is not None else "")
        for name in ("open loop e2e p50", "open loop e2e p99", "open loop ack p99"):
            bar(name, None, "", None, why)
    else:
        e2e, ack = open_["e2e_latency"], open_["accept_latency"]
        lossless = open_.get("all_received", False) and open_.get("lost", 1) == 0 and open_["accepted"] == open_["sent"]
        at = f" at {rate:g}/s"
        for name, value, limit in (
            ("open loop e2e p50", e2e.get("p50_ms"), BAR_E2E_P50_MS),
            ("open loop e2e p99", e2e.get("p99_ms"), BAR_E2E_P99_MS),
            ("open loop ack p99", ack.get("p99_ms"), BAR_ACK_P99_MS),
        ):
            bar(name + at, value, f"<= {limit:g} ms", value is not None and value <= limit and lossless)
    if mode == "scaled":
        key = "system_cpu_us_per_webhook"
        x = _ratio(hub["burst"].get(key), embedded.get("burst", {}).get(key))
        bar("scaled CPU/webhook vs embedded", x, f"<= {BAR_SCALED_CPU:g}x", x is not None and x <= BAR_SCALED_CPU)
    else:
        bar("scaled CPU/webhook vs embedded", None, f"<= {BAR_SCALED_CPU:g}x", None, "not measured (--mode scaled)")
    bar(f"hub ({mode}) lost / duplicates", None, "0 / 0", _clean(hub))
    measured = [b["pass"] for b in bars if b["pass"] is not None]
    return {"bars": bars, "pass": bool(measured) and all(measured)}


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return (f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}") + unit
    return str(value) + unit


def pair(lat: dict[str, Any]) -> str:
    return f"{fmt(lat.get('p50_ms'))} / {fmt(lat.get('p99_ms'))} ms"


def cpu_text(cpu: dict[str, Any]) -> str:
    names = {"system": "self", "floor": "floor", "receiver": "rcv", "client": "client", "other": "other"}
    return ", ".join(f"{short} {fmt(cpu.get(name))}" for name, short in names.items() if name in cpu)


def noise_warning(res: dict[str, Any]) -> str | None:
    windows = [res["hub"]["burst"]["cpu_s_to_drained"], res["floor"]["cpu_s_ingest"]]
    if "node_red" in res:
        windows.append(res["node_red"]["burst"]["cpu_s_to_drained"])
    worst = max((w.get("other_cores") or 0.0) for w in windows)
    if worst < 0.25:
        return None
    return f"WARNING: other processes on this host used up to {worst:.2f} cores during the run: figures are noisy"


def _columns(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cols = [(f"hub {res['config']['mode']}", res["hub"])]
    if "embedded_reference" in res:
        cols.append(("hub embedded", res["embedded_reference"]))
    if "node_red" in res:
        cols.append(("node-red", res["node_red"]))
    return cols


def render(res: dict[str, Any]) -> str:
    cfg, floor = res["config"], res["floor"]
    cols = _columns(res)

    def row(name: str, get: Any, floor_value: str = "") -> tuple[str, ...]:
        values = []
        for _, run in cols:
            try:
                values.append(get(run))
            except (KeyError, TypeError):
                values.append("-")
        return (name, *values, floor_value)

    rows: list[tuple[str, ...]] = [
        row("ingest req/s", lambda r: fmt(r["burst"]["req_per_s"]),
            f"{fmt(floor['req_per_s'])} (median of {', '.join(fmt(x) for x in floor['req_per_s_runs'])})"),
        row("accept latency p50 / p99", lambda r: pair(r["burst"]["accept_latency"]), pair(floor["accept_latency"])),
        row("accepted / sent", lambda r: f"{r['burst']['accepted']} / {r['burst']['sent']}",
            f"{floor['accepted']} / {floor['sent']}"),
        row("delivered/s", lambda r: fmt(r["burst"]["delivered_per_s"])),
        row("delivered while ingesting",
            lambda r: f"{r['burst']['delivered_during_ingest']} / {r['burst']['accepted']}"),
        row("end-to-end p50 / p99", lambda r: pair(r["burst"]["e2e_latency"])),
        row("drained after ingest end", lambda r: fmt(r["burst"]["drain_after_ingest_s"], " s")),
        row("lost", lambda r: str(r["burst"]["lost"]) + ("" if r["burst"]["all_received"] else " (drain timed out)")),
        row("duplicates (same key / same event)",
            lambda r: f"{r['burst']['duplicates']} / {r['burst']['event_repeats']}"),
        row("CPU us per webhook, to drained", lambda r: fmt(r["burst"]["system_cpu_us_per_webhook"])),
        row("CPU s, ingest window", lambda r: cpu_text(r["burst"]["cpu_s_ingest"]), cpu_text(floor["cpu_s_ingest"])),
        row("CPU s, ingest to drained", lambda r: cpu_text(r["burst"]["cpu_s_to_drained"])),
        row("idle end-to-end p50 / p99", lambda r: pair(r["idle"]["e2e_latency"])),
        row("idle lost / duplicates", lambda r: f"{r['idle']['lost']} / {r['idle']['duplicates']}"),
        row(f"open loop {cfg['rate']:g}/s: ack p50 / p99", lambda r: pair(r["open"]["accept_latency"])),
        row("open loop: end-to-end p50 / p99", lambda r: pair(r["open"]["e2e_latency"])),
        row("open loop: accepted / sent, lost",
            lambda r: f"{r['open']['accepted']} / {r['open']['sent']}, {r['open']['lost']}"),
        row("open loop: generator lag max, conns",
            lambda r: f"{fmt(r['open']['generator_max_lag_ms'], ' ms')}, {r['open']['connections']}"),
    ]  # fmt: skip
    headers = ("", *(name for name, _ in cols), "floor")
    widths = [max(len(str(r[i])) for r in [*rows, headers]) for i in range(len(headers))]
    lines = [
        f"hub bench  mode={cfg['mode']}  n={cfg['n']}  concurrency={cfg['concurrency']}  body~{cfg['body_bytes_mean']}B"
        f"  cpus={res['host']['cpus']}  commit={(res['host']['commit'] or '?')[:10]}"
        + ("  (hub/ dirty)" if res["host"]["hub_dirty"] else "")
        + f"  host busy before: {fmt(cfg['host_busy_cores_before'])} cores",
        "",
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for name, run in cols:
        b = run["burst"]
        statuses = {k: n for k, n in b["statuses"].items() if k not in ("202", "200")}
        if statuses or b["errors"]:
            lines.append(f"{name} non-2xx answers: {statuses} {b['errors']}")
        db = run.get("hub_db") or {}
        if db:
            lines.append(
                f"{name} db: deliveries {db['deliveries_by_status']}, attempts {db['attempts_by_outcome']}, "
                f"retried {db['deliveries_retried']}"
            )
            if db.get("attempt_errors"):
                lines.append(f"    attempt errors {db['attempt_errors']}")
        for proc, log in (run.get("log") or {}).items():
            if log.get("lines_by_level"):
                lines.append(f"{proc} log: {log['lines_by_level']}")
                lines += [f"    {m}" for m in log["first_messages"][:4]]
        if run.get("receiver", {}).get("foreign"):
            lines.append(f"{name} foreign deliveries: {run['receiver']['foreign']}")
    warning = noise_warning(res)
    if warning:
        lines += ["", warning]
    v = res["verdict"]
    mark = {True: "PASS", False: "FAIL", None: "----"}
    lines += ["", "verdict (issue 11):"]
    for b in v["bars"]:
        value = b["value"]
        value = "-" if value is None else f"{value:g}" if isinstance(value, float | int) else str(value)
        lines.append(f"  [{mark[b['pass']]}] {b['bar']}: {value} (bar {b['limit']}) {b['note']}".rstrip())
    lines.append(f"  => {'PASS' if v['pass'] else 'FAIL'} (bars not measured in this run are not counted)")
    return "\n".join(lines)


def write_results(res: dict[str, Any]) -> Path:
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    cfg = res["config"]
    path = results / f"{stamp}-{cfg['mode']}-n{cfg['n']}-c{cfg['concurrency']}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    return path
