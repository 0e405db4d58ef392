"""A schemathesis run over every operation of the OpenAPI document, against a real `hub serve` (examples,
coverage, fuzzing and the stateful phase following the document's links), with every check: it must find
no failure. Bounded: a few examples per operation (tests/schemathesis/schemathesis.toml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import ADMIN_KEY, AUTH, GITHUB_SECRET, github_issue, github_request
from tests.procs import HubProcess
from tests.receiver import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "schemathesis" / "schemathesis.toml"


def _seed(base: str) -> None:
    """Objects for the links and the stateful phase to start from: a source with an event, a target, a route."""
    with httpx.Client(base_url=base, headers=AUTH) as c:
        src = c.post("/api/v1/sources", json={"connector": "github", "name": "acme", "secret": GITHUB_SECRET}).json()
        tgt = c.post("/api/v1/targets", json={"kind": "inbox", "name": "box"}).json()
        c.post("/api/v1/routes", json={"source_id": src["id"], "target_id": tgt["id"], "events": ["issues.*"]})
        body, headers = github_request(github_issue(1))
        assert c.post(f"/hooks/{src['id']}", content=body, headers=headers).status_code == 202


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    assert st, "schemathesis is in the test extra: pip install -e '.[test]'"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "HUB_SECRET_KEY": "test-secret-key-with-enough-length",
        "HUB_LOG_JSON": "false",
    }
    hub = HubProcess(["serve", "--port", str(port)], env, tmp_path / "hub.log").start()
    try:
        hub.wait_healthy(base)
        _seed(base)
        run = subprocess.run(
            [
                st,
                "--config-file",
                str(CONFIG),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--header",
                f"Authorization: Bearer {ADMIN_KEY}",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--no-color",
            ],
            cwd=tmp_path,  # its cache (.schemathesis/) stays out of the work tree
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=540,
        )
    finally:
        hub.stop()
    report = run.stdout[-20000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert "Stateful" in run.stdout and "API Links" in run.stdout, report  # the links were followed
