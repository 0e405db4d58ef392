"""Mappings render in killable processes (issue 11): a deadline per delivery, a hard stop, and a heavy
mapping holds neither the other routes' posts nor the acknowledgement of webhooks."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import struct
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from hub.mapping.catalogue import parse_inline
from hub.mapping.child import RenderAnswer
from hub.mapping.context import EventForMapping
from hub.mapping.pool import RenderPool, _Process, _read_answers
from hub.mapping.render import MappingTimedOut
from tests.conftest import create, fire, make_settings, running_app, wait_for
from tests.helpers import GITHUB_SECRET
from tests.receiver import Receiver

LIGHT = parse_inline({"post": {"title": "Issue {{ payload.issue.number }}", "body": "{{ view.summary }}"}})
# the in-process budget stops this after about a second; the pool's deadline can stop it sooner
HEAVY_TITLE = "{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}heavy"
HEAVY = parse_inline({"post": {"title": HEAVY_TITLE}})


def _event(number: int) -> EventForMapping:
    body = json.dumps({"issue": {"number": number}}).encode()
    return EventForMapping(body, None, {}, f"evt_{number}", "issues.opened", "src_1", "github", None, 0.0, "acme")


async def test_a_render_past_its_deadline_is_stopped_and_the_pool_goes_on() -> None:
    pool = RenderPool(processes=1, deadline=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(MappingTimedOut, match=r"more than 0\.3s to render: stopped"):
            await pool.render(_event(1), None, HEAVY, None)
        assert time.monotonic() - started < 0.9  # stopped by the kill, not by the in-process budget (1 s)
        assert pool.stopped == 1
        post = await pool.render(_event(2), None, LIGHT, None)  # a new process took over
        assert post is not None and post.title == "Issue 2"
    finally:
        await pool.close()


async def test_a_render_process_that_dies_fails_its_job_only() -> None:
    pool = RenderPool(processes=1, deadline=5)
    try:
        assert (await pool.render(_event(1), None, LIGHT, None)) is not None
        (pid,) = pool.pids()
        assert pid != os.getpid()
        heavy = asyncio.ensure_future(pool.render(_event(2), None, HEAVY, None))
        light = [asyncio.ensure_future(pool.render(_event(n), None, LIGHT, None)) for n in range(3, 8)]
        await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)  # as the kernel does to a process over its memory
        with pytest.raises(MappingTimedOut):
            await heavy
        titles = [p.title for p in await asyncio.gather(*light) if p is not None]
        assert titles == [f"Issue {n}" for n in range(3, 8)]
        assert pid not in pool.pids()
    finally:
        await pool.close()


async def test_a_heavy_mapping_delays_the_light_ones_by_a_fraction_of_a_second() -> None:
    pool = RenderPool(processes=2, deadline=5)
    try:
        await asyncio.gather(*(pool.render(_event(n), None, LIGHT, None) for n in range(2)))  # both started
        started = time.monotonic()
        heavy = [asyncio.ensure_future(pool.render(_event(100 + n), None, HEAVY, None)) for n in range(3)]
        light = [asyncio.ensure_future(pool.render(_event(n), None, LIGHT, None)) for n in range(30)]
        await asyncio.gather(*light)
        light_done = time.monotonic() - started
        for task in heavy:
            with pytest.raises(MappingTimedOut):  # the in-process budget
                await task
        heavy_done = time.monotonic() - started
        assert light_done < 0.6 < heavy_done, (light_done, heavy_done)
    finally:
        await pool.close()


async def test_a_heavy_route_neither_holds_another_route_nor_the_acknowledgements(
    tmp_path: Path, receiver: Receiver
) -> None:
    if True:
        async with running_app(make_settings(tmp_path)) as (_, client):
            src = await create(
                client, "/api/v1/sources", {"connector": "github", "name": "acme", "secret": GITHUB_SECRET}
            )
            for name, mapping in (("heavy", {"post": {"title": HEAVY_TITLE}}), ("light", None)):
                tgt = await create(client, "/api/v1/targets", {"kind": "webhook", "name": name, "url": receiver.url})
                route = {"source_id": src["id"], "target_id": tgt["id"], "events": ["*"], "mapping": mapping}
                await create(client, "/api/v1/routes", route)
            acks: list[float] = []
            fired: dict[str, float] = {}
            for number in range(1, 6):
                start = time.monotonic()
                fired[await fire(client, src["id"], number)] = time.time()
                acks.append(time.monotonic() - start)
                health = time.monotonic()
                assert (await client.get("/healthz")).status_code == 200
                acks.append(time.monotonic() - health)
                await asyncio.sleep(0.1)

            async def all_light_posts() -> bool:
                return len(receiver.requests) >= 5

            await wait_for(all_light_posts)
            assert max(acks) < 0.5, acks
            delays = []
            for request in receiver.requests:
                event_id = request.body["post"]["event_id"]
                delays.append(request.at - fired[event_id])
            assert max(delays) < 0.8, delays  # a heavy render takes a second or more
            heavy = await client.get("/api/v1/deliveries", params={"status": "pending"})
            assert heavy.status_code == 200
            errors = {d["last_error"] for d in heavy.json()}
            assert all("BudgetExceeded" in (e or "") or "stopped" in (e or "") for e in errors), errors


def test_the_render_processes_are_a_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, render_processes=3, render_deadline=0.5, render_memory_mb=256)
    assert (settings.render_processes, settings.render_deadline, settings.render_memory_mb) == (3, 0.5, 256)
    with pytest.raises(ValueError):
        make_settings(tmp_path, render_deadline=0)


def test_answers_are_read_whole_however_the_pipe_cuts_them() -> None:
    """The parent reads what a render process wrote with ``Connection.send`` in one read per wake-up:
    several answers at once, and an answer split across two wake-ups."""
    parent, child = multiprocessing.Pipe()
    proc = _Process(pid=0, conn=parent)
    try:
        child.send(RenderAnswer("j1", "failed", error="a"))
        child.send(RenderAnswer("j2", "failed", error="b" * 30_000))
        answers = _read_answers(proc)
        assert [a.job_id for a in answers] == ["j1", "j2"] and answers[1].error == "b" * 30_000
        frame = bytes(ForkingPickler.dumps(RenderAnswer("j3", "failed", error="c")))
        os.write(child.fileno(), struct.pack("!i", len(frame)) + frame[:5])
        assert _read_answers(proc) == [] and proc.unread
        os.write(child.fileno(), frame[5:])
        assert [a.job_id for a in _read_answers(proc)] == ["j3"] and proc.unread == b""
        child.close()
        with pytest.raises(EOFError):
            _read_answers(proc)
    finally:
        parent.close()
