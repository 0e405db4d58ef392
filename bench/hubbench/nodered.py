"""Node-RED 4.1.8 as a peer: the same webhooks, a flow ``http in`` -> ``http request`` -> the same receiver.

The npm package is installed by the bench into ``bench/.node-red/`` (gitignored) when missing. The flow
answers each webhook at once (202, ``{"event_id": <X-GitHub-Delivery>}``) and, in parallel, posts
``{"post": {"event_id", "title", "url"}}`` with an ``Idempotency-Key`` to the receiver over a persistent
connection, so the bench counts its deliveries as it counts hub's. Node-RED verifies nothing and stores
nothing: it is the cost of moving a webhook along, not of doing what hub does. The settings turn off
the editor, the admin API, diagnostics and update checks, and log errors only (no start-up notices).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hubbench import BENCH_DIR, HOST
from hubbench.hubs import System
from hubbench.procs import Proc, free_port, wait_http

VERSION = "4.1.8"
INSTALL_DIR = BENCH_DIR / ".node-red"
HOOK_PATH = "/hooks/bench"

SETTINGS_JS = """// Node-RED settings for hub's bench: no editor, no admin API, no credentials noise.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.NODE_RED_PORT, 10),
    flowFile: "flows.json",
    flowFilePretty: false,
    credentialSecret: "hub-bench",
    httpAdminRoot: false,
    disableEditor: true,
    httpNodeRoot: "/",
    apiMaxLength: "10mb",
    functionExternalModules: false,
    externalModules: { autoInstall: false, palette: { allowInstall: false, allowUpload: false } },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false },
    logging: { console: { level: "error", metrics: false, audit: false } },
};
"""

ACK = """msg.statusCode = 202;
msg.headers = {"content-type": "application/json"};
msg.payload = {event_id: msg.req.headers["x-github-delivery"]};
return msg;"""

MAP = """const delivery = msg.req.headers["x-github-delivery"];
const issue = (msg.payload && msg.payload.issue) || {};
delete msg.req;
delete msg.res;
msg.headers = {"content-type": "application/json", "idempotency-key": delivery};
msg.payload = {post: {event_id: delivery, title: issue.title, url: issue.html_url}};
return msg;"""


def flow(receiver_url: str) -> list[dict[str, Any]]:
    tab = "bench-tab"
    return [
        {"id": tab, "type": "tab", "label": "hub bench"},
        {"id": "hook-in", "type": "http in", "z": tab, "url": HOOK_PATH, "method": "post", "upload": False,
         "wires": [["ack", "map"]]},
        {"id": "ack", "type": "function", "z": tab, "func": ACK, "outputs": 1, "wires": [["answer"]]},
        {"id": "answer", "type": "http response", "z": tab, "statusCode": "", "headers": {}, "wires": []},
        {"id": "map", "type": "function", "z": tab, "func": MAP, "outputs": 1, "wires": [["post"]]},
        {"id": "post", "type": "http request", "z": tab, "method": "POST", "ret": "txt", "paytoqs": "ignore",
         "url": receiver_url, "persist": True, "senderr": False, "headers": [], "wires": [[]]},
        {"id": "health-in", "type": "http in", "z": tab, "url": "/healthz", "method": "get", "wires": [["health"]]},
        {"id": "health", "type": "http response", "z": tab, "statusCode": "200", "headers": {}, "wires": []},
    ]  # fmt: skip


def red_js() -> Path:
    return INSTALL_DIR / "node_modules" / "node-red" / "red.js"


def installed_version() -> str | None:
    try:
        data = json.loads((INSTALL_DIR / "node_modules" / "node-red" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("version"))


def ensure_installed() -> None:
    """``npm install node-red@4.1.8`` into bench/.node-red unless it is there already."""
    if installed_version() == VERSION:
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("Node-RED needs node and npm on PATH (or run with --no-node-red)")
    INSTALL_DIR.mkdir(exist_ok=True)
    print(f"installing node-red@{VERSION} into {INSTALL_DIR} ...", flush=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(INSTALL_DIR), f"node-red@{VERSION}", "--no-audit", "--no-fund",
         "--loglevel=error"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0 or installed_version() != VERSION:
        raise RuntimeError(f"npm install node-red@{VERSION} failed: {done.stderr[-2000:]}")


async def start_node_red(args: argparse.Namespace, workdir: Path, receiver_url: str) -> System:
    ensure_installed()
    user_dir = workdir / "node-red"
    user_dir.mkdir(exist_ok=True)
    (user_dir / "settings.js").write_text(SETTINGS_JS)
    (user_dir / "flows.json").write_text(json.dumps(flow(receiver_url)))
    port = free_port()
    env = {**os.environ, "NODE_RED_PORT": str(port)}
    argv = [
        shutil.which("node") or "node",
        str(red_js()),
        "--settings", str(user_dir / "settings.js"),
        "--userDir", str(user_dir),
    ]  # fmt: skip
    proc = Proc("node-red", argv, workdir / "node-red.log", env, cwd=user_dir)
    system = System("node-red", f"Node-RED {VERSION}", port, [proc], hook_path=HOOK_PATH)
    try:
        await wait_http(f"http://{HOST}:{port}/healthz", proc, timeout=60)
    except BaseException:
        system.stop()
        raise
    return system
