"""Subprocesses the bench starts: each in its own session, stopped on any exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from hubbench import BENCH_DIR, HOST

_LIVE: list[Proc] = []  # every process started and not yet stopped: stopped on any exit


class Proc:
    """A subprocess in its own session (so Ctrl-C reaches only the bench), output to a log file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time so far of the process and of every process under it, alive (hub's
        delivery process, render zygote and render processes) or reaped (Linux /proc)."""
        stats = _proc_stats()
        if self.pid not in stats:
            return None
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        total, todo = 0.0, [self.pid]
        while todo:
            pid = todo.pop()
            total += stats[pid][1]
            todo += children.get(pid, [])
        return total

    def stop(self, grace: float = 15.0) -> int | None:
        """``stop_signal`` to the process group we created, SIGKILL after ``grace`` seconds.

        The group is signalled only while its leader is unreaped, so its id cannot have been reused.
        """
        if self in _LIVE:
            _LIVE.remove(self)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, self.stop_signal)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    for proc in reversed(list(_LIVE)):
        proc.stop(grace=5.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.log_tail()}")
            await asyncio.sleep(0.05)


def start_role(role: str, workdir: Path) -> tuple[Proc, int]:
    """The receiver or the floor (``servers.py``), in a process of its own on a free port."""
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "bench.py"), "--role", role, "--port", str(port)]
    return Proc(role, argv, workdir / f"{role}.log"), port


def _proc_stats() -> dict[int, tuple[int, float]]:
    """Every process: its parent and its CPU seconds with its reaped children's (utime … cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        out[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    return out
