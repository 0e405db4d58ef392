"""The small promises of the command line and of the start: keys from the CLI, --version, replay's one-line
errors, the hint when no key exists, and GET / leading to the console."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hub import __version__
from tests.conftest import make_settings, running_app
from tests.receiver import free_port

SECRET = "cli-test-secret-key-0123456789"


def hub_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hub", *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def test_version() -> None:
    proc = hub_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hub {__version__}"


async def test_keys_create_makes_a_working_key_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"HUB_DATA_DIR": str(tmp_path), "HUB_SECRET_KEY": SECRET}
    proc = hub_cli("keys", "create", "--name", "first admin", "--scope", "admin", env=env)  # no tables yet
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.strip()
    assert key.startswith("hub_") and "\n" not in key  # stdout is the key alone: KEY=$(hub keys create …)
    assert "shown only this once" in proc.stderr and key not in proc.stderr
    reader = hub_cli("keys", "create", "--name", "dashboard", env=env).stdout.strip()  # read is the default

    settings = make_settings(tmp_path, bootstrap_admin_key="", secret_key=SECRET)
    async with running_app(settings) as (_, c):
        as_admin, as_reader = ({"Authorization": f"Bearer {k}"} for k in (key, reader))
        target = {"kind": "inbox", "name": "t"}
        assert (await c.post("/api/v1/targets", json=target, headers=as_admin)).status_code == 201
        assert (await c.post("/api/v1/targets", json=target, headers=as_reader)).status_code == 403
        trail = (await c.get("/api/v1/audit", params={"resource": "key"}, headers=as_admin)).json()
        assert [(e["action"], e["actor"]["kind"]) for e in trail] == [("create", "cli")] * 2

    listed = hub_cli("keys", "list", env=env)
    assert "first admin" in listed.stdout and "dashboard" in listed.stdout and key not in listed.stdout
    key_id = next(line.split("\t")[0] for line in listed.stdout.splitlines() if "dashboard" in line)
    assert hub_cli("keys", "revoke", key_id, env=env).returncode == 0
    assert "dashboard" not in hub_cli("keys", "list", env=env).stdout
    assert hub_cli("keys", "revoke", key_id, env=env).returncode == 1


async def test_keys_create_on_postgres(tmp_path: Path, pg_database: str) -> None:
    env = {"HUB_DATA_DIR": str(tmp_path), "HUB_SECRET_KEY": SECRET, "HUB_DATABASE_URL": pg_database}
    proc = hub_cli("keys", "create", "--name", "ops", "--scope", "admin", env=env)
    assert proc.returncode == 0, proc.stderr
    settings = make_settings(tmp_path, bootstrap_admin_key="", secret_key=SECRET, database_url=pg_database)
    async with running_app(settings) as (_, c):
        me = await c.get("/auth/me", headers={"Authorization": f"Bearer {proc.stdout.strip()}"})
        assert me.json()["name"] == "ops" and me.json()["scope"] == "admin"


def test_keys_create_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    down = {"HUB_SECRET_KEY": SECRET, "HUB_DATABASE_URL": f"postgresql+asyncpg://hub@127.0.0.1:{free_port()}/hub"}
    proc = hub_cli("keys", "create", "--name", "x", env=down)
    assert proc.returncode == 1 and proc.stderr.startswith("hub: the database is unreachable")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    bad_scope = hub_cli("keys", "create", "--name", "x", "--scope", "owner", env={"HUB_DATA_DIR": str(tmp_path)})
    assert bad_scope.returncode == 2 and "--scope" in bad_scope.stderr


@pytest.mark.parametrize(
    ("args", "env", "says", "code"),
    [
        ((), {}, "an admin API key is needed", 2),
        (("--url", "http://127.0.0.1:{port}"), {"HUB_API_KEY": "k"}, "cannot reach hub at http://127.0.0.1:", 1),
        (("--url", "127.0.0.1:8000"), {"HUB_API_KEY": "k"}, "is not an http:// or https:// URL", 1),
    ],
    ids=["no key", "unreachable", "no scheme"],
)
def test_replay_fails_in_one_line(args: tuple[str, ...], env: dict[str, str], says: str, code: int) -> None:
    proc = hub_cli("replay", *(a.format(port=free_port()) for a in args), env=env)
    assert proc.returncode == code
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


async def test_start_without_any_key_logs_how_to_make_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hub.app")
    async with running_app(make_settings(tmp_path, bootstrap_admin_key="")):
        pass
    hints = [r.getMessage() for r in caplog.records if "no API key exists" in r.getMessage()]
    assert len(hints) == 1
    assert "hub keys create" in hints[0] and "HUB_BOOTSTRAP_ADMIN_KEY" in hints[0]
    caplog.clear()
    async with running_app(make_settings(tmp_path)):  # with the bootstrap key: a key exists, no hint
        pass
    assert not [r for r in caplog.records if "no API key exists" in r.getMessage()]


async def test_root_redirects_to_the_console(client: httpx.AsyncClient) -> None:
    resp = await client.get("/")
    assert resp.status_code == 307 and resp.headers["location"] == "/admin"
