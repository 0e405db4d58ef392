"""Deployment files, checked without a Docker engine: the image's default command as its user would run it,
and the compose file's wiring with passwords holding @ : / # (through a real Redis and Postgres)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.db.engine import create_engine
from hub.scaled.dispatch import connect, redis_settings
from tests.pg import PG_DSN
from tests.receiver import free_port

ROOT = Path(__file__).resolve().parent.parent
NASTY = "p@ss:w/rd#1%40?&x y"  # every character that breaks a URL, and a percent-escape lookalike


def dockerfile() -> dict[str, Any]:
    """The Dockerfile's ENV (joined continuation lines), USER, VOLUME, ENTRYPOINT + CMD and RUN lines."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out: dict[str, Any] = {"env": {}, "run": []}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            out["env"].update(dict(part.split("=", 1) for part in shlex.split(rest)))
        elif word in ("USER", "VOLUME", "ENTRYPOINT", "CMD"):
            out[word.lower()] = rest.strip()
        elif word == "RUN":
            out["run"].append(rest)
    return out


def test_the_image_keeps_its_data_in_a_volume_its_user_owns() -> None:
    image = dockerfile()
    data = image["env"]["HUB_DATA_DIR"]
    assert data == "/data" and image["volume"] == '["/data"]' and image["user"] == "hub"
    assert any("useradd" in r and "--uid 10001" in r and f"chown hub:hub {data}" in r for r in image["run"])
    assert image["entrypoint"] == '["hub"]' and image["cmd"] == '["serve", "--host", "0.0.0.0", "--port", "8000"]'


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_the_images_default_command_serves_as_its_unprivileged_user(tmp_path: Path) -> None:
    """`hub serve` with the image's environment, as uid 10001, from a working directory it cannot write
    (as /app in the image), with only the data dir writable: it starts and answers /readyz."""
    image = dockerfile()
    root = Path(tempfile.mkdtemp(prefix="hub-image-"))  # pytest's tmp dirs are root's alone
    root.chmod(0o755)
    data, workdir = root / "data", root / "app"
    data.mkdir()
    os.chown(data, 10001, 10001)
    workdir.mkdir(mode=0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(image["env"], HOME=str(data))
    if env.get("HUB_DATA_DIR") == "/data":  # the image's volume, here a directory the user owns
        env["HUB_DATA_DIR"] = str(data)
    cmd = ["serve", "--host", "127.0.0.1", "--port", str(port)]  # the image's CMD, on loopback
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", sys.executable, "-m", "hub", *cmd],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "hub serve did not become ready"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert (data / "hub.db").stat().st_uid == 10001 and (data / "secret.key").exists()
        assert list(workdir.iterdir()) == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(root)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:?message} and ${VAR:-default} (enough for our file)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if op == ":?" and not env.get(name):
            raise AssertionError(f"compose would refuse to start: {arg}")
        return env.get(name) or (arg if op == ":-" else "")

    return re.sub(r"\$\{(\w+)(:\?|:-)?([^}]*)\}", one, value)


def compose_env(service: str, env: dict[str, str]) -> dict[str, str]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    raw = doc["services"][service]["environment"]
    return {k: interpolate(str(v), env) for k, v in raw.items()}


def test_compose_keeps_passwords_out_of_the_urls() -> None:
    env = {"POSTGRES_PASSWORD": NASTY, "REDIS_PASSWORD": NASTY, "HUB_SECRET_KEY": "s" * 32}
    for service in ("migrate", "api", "worker"):
        hub_env = compose_env(service, env)
        assert hub_env["HUB_DATABASE_PASSWORD"] == NASTY and hub_env["HUB_REDIS_PASSWORD"] == NASTY
        assert NASTY not in hub_env["HUB_DATABASE_URL"] and NASTY not in hub_env["HUB_REDIS_URL"]
        settings = Settings(_env_file=None, **{k[4:].lower(): v for k, v in hub_env.items() if k.startswith("HUB_")})
        url = make_url(settings.effective_database_url)
        assert (url.username, url.password, url.host, url.database) == ("hub", NASTY, "postgres", "hub")
        redis_conf = redis_settings(settings.redis_url, settings.redis_password)
        assert (redis_conf.host, redis_conf.password, redis_conf.database) == ("redis", NASTY, 0)
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert doc["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    with pytest.raises(AssertionError, match="set POSTGRES_PASSWORD"):
        compose_env("api", {"REDIS_PASSWORD": "x", "HUB_SECRET_KEY": "s" * 32})


async def test_a_nasty_redis_password_connects(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            *(shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", NASTY),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port, password=NASTY)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        pool = await connect(f"redis://127.0.0.1:{port}/0", NASTY)
        try:
            assert await pool.ping()
        finally:
            await pool.aclose()
        quoted = NASTY.replace("%", "%25").replace("@", "%40").replace(":", "%3A").replace("/", "%2F")
        quoted = quoted.replace("#", "%23").replace("?", "%3F").replace("&", "%26").replace(" ", "%20")
        pool = await connect(f"redis://:{quoted}@127.0.0.1:{port}/0")  # or percent-encoded in the URL
        try:
            assert await pool.ping()
        finally:
            await pool.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_a_nasty_database_password_reaches_the_driver(tmp_path: Path) -> None:
    """Postgres here trusts 127.0.0.1, so the password is not checked: what matters is that the URL hub
    assembles parses back to it and connects."""
    base = PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=base, database_password=NASTY)
    assert make_url(settings.effective_database_url).password == NASTY
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT 1")) == 1
    finally:
        await engine.dispose()
