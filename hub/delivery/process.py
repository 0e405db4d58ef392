"""`hub serve`'s deliveries in a second process (``HUB_DELIVERY_PROCESS``, on by default).

One process does not use a second core: it ingests and delivers on one event loop, so a burst is
acknowledged first and delivered after. Here the API process ingests and the delivery process
(:mod:`hub.delivery.process_main`) claims, renders, sends and records, on the same database. The database
stays the only hand-over: the API process commits, then wakes the delivery process over a socket pair;
nothing acknowledged lives only in the socket.

What goes over the socket, API → delivery, one byte each: ``w`` something is due, ``c`` the configuration
changed (routes, targets…: its cache reloads at once instead of after its TTL), ``m`` send your metrics,
``q`` stop. Delivery → API, length-prefixed JSON frames: ``{"ready": true}`` once it delivers,
``{"metrics": …}`` on request. The delivery process dies with the API process (SIGKILL on Linux, EOF
elsewhere), like the one process it replaces; the API process restarts it if it stops on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import sys
from typing import Any

from hub.metrics import Family
from hub.runtime import Runtime

log = logging.getLogger("hub.worker")
WAKE, CONFIG, METRICS, QUIT = b"w", b"c", b"m", b"q"
FRAME = struct.Struct(">I")
START_TIMEOUT = 60.0  # seconds for the delivery process to start (imports, database) before serve gives up
RESTART_DELAY = 1.0


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    size = FRAME.unpack(await reader.readexactly(FRAME.size))[0]
    message: dict[str, Any] = json.loads(await reader.readexactly(size))
    return message


def frame(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return FRAME.pack(len(data)) + data


class DeliveryProcess:
    """The API process's side: starts, wakes, reconfigures, asks and stops the delivery process. It is
    the runtime's dispatcher, as the in-process worker would be."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._outbox = bytearray()
        self._metrics: asyncio.Future[list[Family]] | None = None
        self._metrics_lock = asyncio.Lock()
        self._ready: asyncio.Future[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start it and wait until it delivers; its failure to start is serve's failure to start."""
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="hub-delivery-process")
        self.rt.cache.on_invalidate.append(lambda: self._send(CONFIG))
        self.rt.metric_sources.append(self.metrics)
        self.rt.readiness_probes["delivery_process"] = self._probe

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        self._ready = asyncio.get_running_loop().create_future()
        if self._writer is not None:  # the end of the socket of a delivery process that stopped
            self._writer.close()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hub.delivery.process_main",
                str(theirs.fileno()),
                str(os.getpid()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.PIPE,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        assert self._proc.stdin is not None  # our settings, whatever they were built from (not only the environment)
        self._proc.stdin.write(self.rt.settings.model_dump_json().encode())
        self._proc.stdin.close()
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._reading = asyncio.create_task(self._read(reader))
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except BaseException:
            self._reading.cancel()
            await self._kill()
            raise

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Frames from the delivery process, until it closes its end."""
        try:
            while True:
                message = await read_frame(reader)
                if message.get("ready") and self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
                if "metrics" in message and self._metrics is not None and not self._metrics.done():
                    self._metrics.set_result([Family.from_json(f) for f in message["metrics"]])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for waiting in (self._ready, self._metrics):
                if waiting is not None and not waiting.done():
                    waiting.set_exception(RuntimeError("the delivery process stopped"))

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("the delivery process stopped; starting it again", extra={"exit_code": code})
            await asyncio.sleep(RESTART_DELAY)
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception:
                log.exception("the delivery process did not start again; retrying")

    async def notify(self) -> None:
        self._send(WAKE)

    def _send(self, command: bytes) -> None:
        """Commands of one loop iteration go out together, each at most once."""
        if command in self._outbox:
            return
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox += command

    def _flush(self) -> None:
        data, self._outbox = bytes(self._outbox), bytearray()
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def metrics(self) -> list[Family]:
        """The delivery process's counters (attempts, latencies, retention, storage)."""
        async with self._metrics_lock:
            self._metrics = asyncio.get_running_loop().create_future()
            self._send(METRICS)
            try:
                return await asyncio.wait_for(asyncio.shield(self._metrics), 2.0)
            except Exception:
                return []
            finally:
                self._metrics = None

    async def _probe(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            raise RuntimeError("the delivery process is not running")

    async def stop(self) -> None:
        """After ingest stopped: the delivery process finishes what it is sending, then exits."""
        self._stopping = True
        self._send(QUIT)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), self.rt.settings.delivery_timeout + 5)
            except TimeoutError:
                log.warning("the delivery process did not stop in time; killing it")
                await self._kill()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._writer is not None:
            self._writer.close()
        if self._reading is not None:
            self._reading.cancel()

    async def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
