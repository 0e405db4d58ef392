"""hub's load benchmark, as a package: ``python bench/bench.py`` runs :func:`hubbench.cli.main`.

Modules: ``procs`` (subprocesses), ``servers`` (the floor and the receiver roles), ``hubs`` (starting hub
in a mode and configuring it), ``nodered`` (the Node-RED peer), ``load`` (signed webhooks, closed- and
open-loop load), ``figures`` (what a run measured), ``run`` (the phases), ``report`` (verdict, table,
JSON), ``cli`` (arguments and entry point).
"""

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
HOST = "127.0.0.1"
SECRET = "bench-secret-0123456789abcdef"
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
EVENT = "issues.opened"
