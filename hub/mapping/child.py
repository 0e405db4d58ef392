"""The render process: maps stored events into Posts, away from the event loop that ingests and sends.

It receives batches of ``RenderJob`` over a pipe and answers each job, as soon as it is rendered, with a
``RenderAnswer``. What the jobs refer to (connector specs, mappings, the people directory) is sent once
and kept by key. The process can be killed at any point (``hub/mapping/pool.py`` does so when a render outlives its
deadline): it holds no state that is not sent again.
"""

from __future__ import annotations

import gc
import resource
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from hub.connectors.parse import ParseError
from hub.mapping.context import EventForMapping, context_for
from hub.mapping.post import Post
from hub.mapping.render import MappingError, MappingOverBudget, MappingTimedOut, applies, render_post


@dataclass(frozen=True)
class RenderJob:
    """One event through one mapping; ``*_key`` name objects sent to the process beforehand."""

    job_id: int
    connector_key: int | None  # None: the connector is unknown
    mapping_key: int
    directory_key: int | None
    event: EventForMapping


@dataclass(frozen=True)
class RenderAnswer:
    """``kind``: ``post`` (``post`` None when the mapping's ``when`` skips the event), ``timed_out``,
    ``over_budget``, ``failed`` (a mapping or payload error, ``error`` says which)."""

    job_id: int
    kind: str
    post: Post | None = None
    error: str = ""


def render_job(job: RenderJob, objects: dict[int, Any]) -> RenderAnswer:
    """The pure part: the Post of one job, every failure an answer."""
    spec = objects[job.connector_key] if job.connector_key is not None else None
    directory = objects[job.directory_key] if job.directory_key is not None else None
    try:
        context = context_for(job.event, spec, directory)
        mapping = objects[job.mapping_key]
        if not applies(mapping, context):
            return RenderAnswer(job.job_id, "post")
        return RenderAnswer(job.job_id, "post", render_post(mapping, context))
    except MappingTimedOut as exc:
        return RenderAnswer(job.job_id, "timed_out", error=str(exc))
    except MappingOverBudget as exc:
        return RenderAnswer(job.job_id, "over_budget", error=str(exc))
    except (MappingError, ParseError) as exc:
        return RenderAnswer(job.job_id, "failed", error=str(exc))
    except Exception as exc:  # a bug in a view or a payload no parser expected: this job fails, not the process
        return RenderAnswer(job.job_id, "failed", error=f"{type(exc).__name__}: {exc}"[:500])


def serve(conn: Connection, memory_limit: int) -> None:
    """The process's loop: until the pipe closes, render each batch and answer as it goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which closes the pipe
    if memory_limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)  # as `hub serve` does: a render allocates hundreds of short-lived objects
    objects: dict[int, Any] = {}
    while True:
        try:
            reset, sent, jobs = conn.recv()
        except (EOFError, OSError):
            return
        if reset:
            objects.clear()
        objects.update(sent)
        for job in jobs:  # each answered at once: the parent knows which job runs, and since when
            try:
                answer = render_job(job, objects)
            except MemoryError:
                answer = RenderAnswer(job.job_id, "over_budget", error="the render ran out of memory")
            conn.send(answer)
