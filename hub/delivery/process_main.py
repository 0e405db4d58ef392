"""The delivery process of `hub serve` (see :mod:`hub.delivery.process`): the embedded worker, its
retention and storage loops, with no HTTP server. Started by the API process as
``python -m hub.delivery.process_main <socket fd> <parent pid>``, with the API process's settings as
JSON on its standard input."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys

from hub.config import Settings
from hub.delivery.embedded import EmbeddedWorker
from hub.delivery.jobs import local_runner
from hub.delivery.process import CONFIG, METRICS, QUIT, WAKE, frame
from hub.fastloop import settle_gc
from hub.metrics import Family
from hub.runtime import Runtime, build_runtime

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL when the API process dies, whatever killed it: no delivery outlives it (Linux; elsewhere
    the socket's end of file stops us)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


async def run(settings: Settings, fd: int) -> None:
    rt = build_runtime(settings)
    if rt.ingest.sqlite_writer is not None:
        # Claims and outcomes only (webhooks are stored by the API process, with fsync): a commit here
        # does not wait for the disk. A power cut may undo the last ones: those deliveries are sent
        # again, with the same Idempotency-Key, as after any crash. A crash of the process loses none.
        rt.ingest.sqlite_writer.synchronous = "NORMAL"
    worker = EmbeddedWorker(rt)
    rt.dispatcher = worker
    rt.background = local_runner(rt)
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    try:
        await worker.recover()
        worker.start()
        settle_gc()
        writer.write(frame({"ready": True}))
        await _obey(rt, worker, reader, writer)
    finally:
        await worker.stop()
        await rt.ingest.stop()
        await rt.close()
        writer.close()


async def _obey(
    rt: Runtime, worker: EmbeddedWorker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """The API process's commands, until it says stop."""
    while True:
        data = await reader.read(4096)
        if not data:  # the API process is gone without asking us to stop: stop as it did
            os._exit(1)
        if CONFIG in data:
            rt.cache.invalidate()
        if WAKE in data or CONFIG in data:
            await worker.notify()
        for _ in range(data.count(METRICS)):
            writer.write(frame({"metrics": [Family.of(m).to_json() for m in rt.metrics.registry.collect()]}))
        if QUIT in data:
            return


def main() -> None:
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    die_with_parent(parent)
    # Ctrl-C, or a service manager's SIGTERM to the whole group: the API process stops us once it has
    # stored what it received (``q``); on its own death we get SIGKILL.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from hub.fastloop import run_fast
    from hub.logs import configure_logging

    settings = Settings(_env_file=None, **json.loads(sys.stdin.buffer.read()))  # the API process's own
    configure_logging(settings.log_level, settings.log_json)
    run_fast(run(settings, fd))


if __name__ == "__main__":
    main()
