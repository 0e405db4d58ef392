"""Arguments and the entry point of ``python bench/bench.py``."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hubbench import REPO_DIR
from hubbench.hubs import HUB_MODES
from hubbench.procs import stop_all
from hubbench.report import render, verdict, write_results
from hubbench.run import run
from hubbench.servers import serve_role

DESCRIPTION = """Load benchmark of hub: durable ingest, delivery and end-to-end latency, beside Node-RED 4.1.8
and a bare ASGI floor, with the verdict of each bar of issue 11. See bench/README.md."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="webhooks in the burst (default 2000)")
    p.add_argument("--concurrency", type=int, default=32, help="connections sending at once (default 32)")
    p.add_argument("--mode", default="embedded", choices=list(HUB_MODES), help="how hub runs")
    p.add_argument("--workers", type=int, default=None, help="`hub worker` processes (scaled mode; default 1)")
    p.add_argument("--warmup", type=int, default=100, help="uncounted webhooks before the burst (default 100)")
    p.add_argument("--idle-n", type=int, default=20, help="webhooks sent one at a time after the burst")
    p.add_argument("--idle-gap", type=float, default=0.1, help="seconds between two idle webhooks")
    p.add_argument("--rate", type=float, default=500.0, help="open loop: webhooks/s on schedule (0 = skip)")
    p.add_argument("--duration", type=float, default=10.0, help="open loop: seconds (default 10)")
    p.add_argument("--no-node-red", action="store_true", help="skip the Node-RED peer")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="longest wait for deliveries, seconds")
    p.add_argument("--request-timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--settle", type=float, default=1.0, help="wait for late duplicates after draining, seconds")
    p.add_argument("--floor-reps", type=int, default=5, help="floor bursts; the median one is kept (default 5)")
    p.add_argument("--profile-hub", type=Path, default=None, metavar="FILE", help="run hub under cProfile, to FILE")
    p.add_argument("--hub-env", action="append", default=[], metavar="HUB_X=V", help="extra env for hub")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S", help="wait up to S s for an idle host")
    p.add_argument("--tmpdir", default=None, help="where the run's temp dir goes (default: the system's)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (hub db, logs)")
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--role", choices=["bench", "receiver", "floor"], default="bench", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "bench":
        if args.workers is not None and args.mode != "scaled":
            p.error("--workers only applies to --mode scaled")
        if args.n < 1 or args.concurrency < 1 or args.floor_reps < 1:
            p.error("--n, --concurrency and --floor-reps must be >= 1")
        if args.rate < 0 or args.duration <= 0:
            p.error("--rate must be >= 0 and --duration > 0")
        for item in args.hub_env:
            if not item.startswith("HUB_") or "=" not in item:
                p.error(f"--hub-env wants HUB_NAME=value, got {item!r}")
    return args


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role != "bench":
        serve_role(args.role, args.port)
        return 0
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            res = runner.run(run(args))
    except KeyboardInterrupt:
        print("\ninterrupted; stopping processes", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_all()
    res["verdict"] = verdict(res)
    print()
    print(render(res))
    if not args.no_json:
        print(f"\nresults: {write_results(res).relative_to(REPO_DIR)}")
    return 0
