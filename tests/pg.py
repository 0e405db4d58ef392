"""Throwaway databases on the real Postgres and a private real Redis for the scaled-mode tests."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import redis

PG_DSN = os.environ.get("HUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HUB_TEST_REDIS", "redis://127.0.0.1:6379")


async def create_database() -> str:
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def sqlalchemy_url(name: str) -> str:
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


_CLAIM_TTL = 3600  # seconds; a claim of a run that died frees itself
_claimed: dict[str, int] = {}


def _claim_redis_db() -> int:
    """A database index of the shared server that no other test run uses: claimed with SET NX in db 0
    (so several test runs, CI and a developer's, can share the server), released when the run ends."""
    if "db" in _claimed:
        return _claimed["db"]
    control = redis.Redis.from_url(f"{REDIS_URL}/0")
    for index in range(1, 16):
        if control.set(f"hub-test-claim:{index}", os.getpid(), nx=True, ex=_CLAIM_TTL):
            _claimed["db"] = index
            atexit.register(control.delete, f"hub-test-claim:{index}")
            return index
    raise AssertionError("every Redis database 1-15 is claimed by another test run")


def fresh_redis_db() -> str:
    """This run's own Redis database of the shared server, emptied."""
    url = f"{REDIS_URL}/{_claim_redis_db()}"
    redis.Redis.from_url(url).flushdb()
    return url


class PrivateRedis:
    """A real redis-server of our own on a free port, so a test may restart or flush it."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def flushall(self) -> None:
        redis.Redis(port=self.port).flushall()
