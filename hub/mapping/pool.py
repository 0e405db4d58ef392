"""Mappings render in separate processes, each render under a hard deadline.

A template is code: a heavy one must not stall the event loop that acknowledges webhooks and sends
posts, and only a process can really be stopped. The pool keeps ``processes`` render processes
(``hub/mapping/child.py``, forked by ``hub/mapping/zygote.py``), started on first
use. Jobs submitted together go out in one message; each
process answers job by job, so the pool knows which job runs and since when:

- a job that runs longer than ``deadline`` seconds is stopped by killing its process: that job fails
  (``MappingTimedOut``: the delivery is tried again later), the jobs queued behind it go to another
  process, and a new process replaces the killed one;
- jobs waiting behind a job that runs longer than ``slow_after`` are handed to an idle process too
  (renders are pure: the first answer wins), and when every process is held by a slow job, another one
  starts (up to twice ``processes``), so heavy mappings delay the others by a fraction of a second;
- a process that dies (out of memory under ``RLIMIT_AS``…) fails the job it was running, not the rest.

``processes=0`` renders on the event loop (no isolation: for debugging only).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import pickle
import signal
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hub.connectors.spec import ConnectorSpec
from hub.mapping.child import RenderAnswer, RenderJob, render_job
from hub.mapping.context import EventForMapping
from hub.mapping.post import Post
from hub.mapping.render import MappingError, MappingOverBudget, MappingTimedOut
from hub.mapping.spec import MappingSpec
from hub.mapping.zygote import spawn_render_process
from hub.people.directory import Directory

log = logging.getLogger("hub.mapping")
MAX_BATCH = 64
MAX_KEPT = 512  # objects (specs, mappings, directories) a process keeps before it is told to forget them
READ_SIZE = 1 << 20
_LENGTH, _HUGE_LENGTH = struct.Struct("!i"), struct.Struct("!Q")  # multiprocessing.Connection's frame header
WATCH_EVERY = 0.02
SLOW_MEMORY = 60.0  # seconds a lane (a route) seen slow keeps its jobs one at a time


@dataclass(eq=False)
class _Pending:
    job: RenderJob
    objects: dict[int, Any]
    future: asyncio.Future[RenderAnswer]
    lane: str  # jobs of a lane seen slow lately go one at a time
    queued: bool = True  # in the pool's queue (also when a process holds it behind a slow job)


@dataclass(eq=False)
class _Process:
    pid: int
    conn: Connection
    inflight: deque[_Pending] = field(default_factory=deque)
    head_since: float = 0.0  # when the job at the head of ``inflight`` started
    known: set[int] = field(default_factory=set)
    forget: bool = False  # its objects are cleared with the next batch
    slow_lane: bool = False  # it runs a job of a lane lately seen slow
    warm: bool = False  # it has answered once (a new process's first answer is slower: it is not judged)
    unread: bytes = b""  # the start of an answer not wholly arrived yet


def _read_answers(proc: _Process) -> list[RenderAnswer]:
    """The answers the process wrote, in one read of its pipe (called when the pipe is readable, so the
    read does not wait), in ``multiprocessing.Connection``'s framing: a 4-byte big-endian length (-1 then
    an 8-byte one for the huge), then the pickle. ``Connection.poll`` + ``recv`` per answer cost a new
    selector and three system calls each."""
    data = os.read(proc.conn.fileno(), READ_SIZE)
    if not data:
        raise EOFError
    buf, pos, answers = proc.unread + data, 0, []
    while len(buf) - pos >= 4:
        (size,) = _LENGTH.unpack_from(buf, pos)
        head = 4
        if size == -1:
            if len(buf) - pos < 12:
                break
            (size,) = _HUGE_LENGTH.unpack_from(buf, pos + 4)
            head = 12
        if len(buf) - pos - head < size:
            break
        answers.append(pickle.loads(buf[pos + head : pos + head + size]))
        pos += head + size
    proc.unread = buf[pos:]
    return answers


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _outcome(answer: RenderAnswer) -> Post | None:
    if answer.kind == "post":
        return answer.post
    if answer.kind == "timed_out":
        raise MappingTimedOut(answer.error)
    if answer.kind == "over_budget":
        raise MappingOverBudget(answer.error)
    raise MappingError(answer.error)


class RenderPool:
    def __init__(self, processes: int = 2, deadline: float = 2.0, memory_mb: int = 1024, slow_after: float = 0.1):
        self.processes = processes
        self.deadline = deadline
        self.memory_limit = memory_mb * 1024 * 1024
        self.slow_after = slow_after
        self.stopped = 0  # renders stopped at their deadline
        self._ids = itertools.count(1)
        self._queue: deque[_Pending] = deque()
        self._procs: list[_Process] = []
        self._starting = 0
        self._slow: dict[str, float] = {}  # lane → until when its jobs go one at a time
        self._kept: dict[int, Any] = {}  # strong references: a key (an id) is not reused while sent
        self._watch: asyncio.Task[None] | None = None
        self._spawning: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)
        self._dispatch_soon = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def render(
        self,
        event: EventForMapping,
        spec: ConnectorSpec | None,
        mapping: MappingSpec,
        directory: Directory | None,
        lane: str = "",
    ) -> Post | None:
        """The Post (None when the mapping's ``when`` skips the event); MappingError and its kinds.
        ``lane`` (a route) is what a slow render marks slow, the mapping when none is given."""
        objects = {id(o): o for o in (spec, mapping, directory) if o is not None}
        job = RenderJob(
            next(self._ids),
            id(spec) if spec is not None else None,
            id(mapping),
            id(directory) if directory is not None else None,
            event,
        )
        if self.processes <= 0:
            return _outcome(render_job(job, objects))
        if self._closed:
            raise MappingTimedOut("hub is stopping")
        self._loop = asyncio.get_running_loop()
        pending = _Pending(job, objects, self._loop.create_future(), lane or str(id(mapping)))
        self._queue.append(pending)
        self._start()
        if not self._dispatch_soon:  # every job submitted in this turn of the loop goes in one message
            self._dispatch_soon = True
            self._loop.call_soon(self._dispatch)
        return _outcome(await pending.future)

    def _start(self, wanted: int = 0) -> None:
        assert self._loop is not None
        while len(self._procs) + self._starting < max(wanted, self.processes):
            self._starting += 1
            task = self._loop.create_task(self._spawn())
            self._spawning.add(task)
            task.add_done_callback(self._spawning.discard)
        if self._watch is None:
            self._watch = self._loop.create_task(self._watchdog())

    async def _spawn(self) -> None:
        try:
            proc = await asyncio.to_thread(self._new_process)
        except Exception:
            log.exception("a render process did not start")
            await asyncio.sleep(1)  # then the next render tries again
            self._starting -= 1
            self._fail_all_if_none("no render process could be started")  # tried again later
            return
        self._starting -= 1
        if self._closed:
            _kill(proc.pid)
            proc.conn.close()
            return
        self._procs.append(proc)
        asyncio.get_running_loop().add_reader(proc.conn.fileno(), self._on_answers, proc)
        self._dispatch()

    def _new_process(self) -> _Process:
        pid, conn = spawn_render_process(self.memory_limit)
        return _Process(pid, conn)

    def _fail_all_if_none(self, why: str) -> None:
        """No process to render: the waiting jobs fail as timed out (their deliveries are tried again)."""
        if self._procs or self._starting:
            return
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.set_result(RenderAnswer(p.job.job_id, "timed_out", error=why))

    def _dispatch(self) -> None:
        """Hand queued jobs to idle processes in one message each. Jobs of a lane lately seen slow
        go one at a time, and never to the last idle process while other jobs wait."""
        self._dispatch_soon = False
        idle = [p for p in self._procs if not p.inflight]
        if not self._queue or not idle:
            return
        now = time.monotonic()
        running = {p.inflight[0].job.job_id for p in self._procs if p.inflight}
        normal: list[_Pending] = []
        slow: list[_Pending] = []
        for p in self._queue:
            p.queued = False
            if not p.future.done() and p.job.job_id not in running:  # a running job is not run twice
                (slow if self._slow.get(p.lane, 0.0) > now else normal).append(p)
        self._queue.clear()
        slow_busy = sum(1 for p in self._procs if p.inflight and p.slow_lane)
        while idle and (normal or slow):
            proc = idle.pop()
            if slow and slow_busy < max(1, len(self._procs) - 1) and (not normal or idle):
                self._send(proc, [slow.pop(0)], now, slow_lane=True)
                slow_busy += 1
                continue
            if not normal:
                break
            share = min(MAX_BATCH, math.ceil(len(normal) / (len(idle) + 1)))
            self._send(proc, normal[:share], now)
            del normal[:share]
        self._requeue(normal + slow)

    def _send(self, proc: _Process, batch: list[_Pending], now: float, slow_lane: bool = False) -> None:
        if len(self._kept) > MAX_KEPT:
            self._kept.clear()
            for other in self._procs:
                other.known.clear()
                other.forget = True
        sent: dict[int, Any] = {}
        for p in batch:
            for key, obj in p.objects.items():
                if key not in proc.known:
                    sent[key] = self._kept[key] = obj
                    proc.known.add(key)
        try:
            proc.conn.send((proc.forget, sent, [p.job for p in batch]))
        except (OSError, ValueError):
            self._requeue(batch)
            self._lost(proc, "the render process is gone")
            return
        except Exception as exc:  # what a job refers to cannot be sent (pickled): those jobs fail, not the pool
            log.exception("render jobs could not be sent to a render process")
            for p in batch:
                if not p.future.done():
                    p.future.set_result(RenderAnswer(p.job.job_id, "failed", error=f"{type(exc).__name__}: {exc}"))
            proc.known.difference_update(sent)
            return
        proc.forget = False
        proc.inflight.extend(batch)
        proc.head_since = now
        proc.slow_lane = slow_lane

    def _requeue(self, pending: list[_Pending]) -> bool:
        """Put jobs back at the head of the queue (those not already there nor answered)."""
        back = [p for p in pending if not p.queued and not p.future.done()]
        for p in back:
            p.queued = True
        self._queue.extendleft(reversed(back))
        return bool(back)

    def _on_answers(self, proc: _Process) -> None:
        try:
            answers = _read_answers(proc)
        except (EOFError, OSError, pickle.UnpicklingError):
            self._lost(proc, "the render process ended (out of memory?)", dead=True)
            return
        for answer in answers:
            while proc.inflight and proc.inflight[0].job.job_id != answer.job_id:
                proc.inflight.popleft()  # cannot happen: answers come in order
            if proc.inflight:
                done = proc.inflight.popleft()
                if not done.future.done():
                    done.future.set_result(answer)
            proc.head_since = time.monotonic()
            proc.warm = True
        if not proc.inflight:
            self._dispatch()

    def _lost(self, proc: _Process, why: str, dead: bool = False) -> None:
        """A process to kill or dead: its running job fails with ``why``, the others are queued again."""
        if proc in self._procs:
            self._procs.remove(proc)
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(proc.conn.fileno())
        if not dead:
            _kill(proc.pid)
        proc.conn.close()
        if proc.inflight:
            head = proc.inflight.popleft()
            if not head.future.done():
                log.warning("render stopped: %s", why, extra={"event_id": head.job.event.event_id})
                head.future.set_result(RenderAnswer(head.job.job_id, "timed_out", error=why))
            self._requeue(list(proc.inflight))
        proc.inflight.clear()
        if not self._closed:
            self._start()
            self._dispatch()

    async def _watchdog(self) -> None:
        while not self._closed:
            await asyncio.sleep(WATCH_EVERY)
            now = time.monotonic()
            if len(self._slow) > MAX_KEPT:
                self._slow = {k: until for k, until in self._slow.items() if until > now}
            for proc in list(self._procs):
                if not proc.inflight:
                    continue
                running = now - proc.head_since
                if running > self.deadline:
                    self.stopped += 1
                    self._lost(proc, f"the mapping took more than {self.deadline:g}s to render: stopped")
                elif running > self.slow_after:
                    if proc.warm:
                        self._slow[proc.inflight[0].lane] = now + SLOW_MEMORY
                    if self._requeue(list(itertools.islice(proc.inflight, 1, None))):
                        self._dispatch()
            held = all(p.inflight and now - p.head_since > self.slow_after for p in self._procs)
            if self._queue and held:  # every process is held by a slow job
                self._start(min(len(self._procs) + 1, self.processes * 2))

    def pids(self) -> list[int]:
        """The render processes running now."""
        return [p.pid for p in self._procs]

    async def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
        for proc in list(self._procs):
            self._lost(proc, "hub is stopping")
        self._fail_all_if_none("hub is stopping")
