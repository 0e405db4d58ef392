"""Signed webhooks and the load generator: prebuilt HTTP/1.1 requests written over raw asyncio streams
(on uvloop) and answers parsed minimally, so the client costs little CPU.

* :func:`fire` is closed-loop: ``concurrency`` keep-alive connections, opened before the clock starts,
  each sending its next request as soon as the previous one is answered.
* :func:`fire_open` is open-loop: request *i* is due at ``start + i / rate`` and is written then,
  whatever the answers so far (a free keep-alive connection if there is one, a new one otherwise).
  Latencies count from the due time, so a generator that falls behind shows instead of hiding.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hubbench import HOST, SECRET


def issue_payload(number: int) -> dict[str, Any]:
    """A GitHub ``issues`` / ``opened`` payload, trimmed but of the usual shape."""
    repo = "acme/widgets"
    user = {
        "login": "octocat",
        "id": 583231,
        "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
        "html_url": "https://github.com/octocat",
        "type": "User",
        "site_admin": False,
    }
    return {
        "action": "opened",
        "issue": {
            "url": f"https://api.github.com/repos/{repo}/issues/{number}",
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "id": 1_000_000 + number,
            "node_id": f"I_kwDOBench{number:08d}",
            "number": number,
            "title": f"Widget #{number} squeaks when rotated counter-clockwise",
            "user": user,
            "labels": [{"id": 208045946, "name": "bug", "color": "d73a4a", "default": True}],
            "state": "open",
            "locked": False,
            "assignees": [],
            "comments": 0,
            "created_at": "2024-05-01T12:00:00Z",
            "updated_at": "2024-05-01T12:00:00Z",
            "author_association": "MEMBER",
            "body": "Steps to reproduce:\n\n1. Take a widget\n2. Rotate it counter-clockwise\n3. Listen\n\n"
            "Expected: silence. Actual: a faint squeak, louder on cold mornings. " * 3,
        },
        "repository": {
            "id": 123456789,
            "node_id": "R_kgDOBench",
            "name": "widgets",
            "full_name": repo,
            "private": True,
            "owner": {**user, "login": "acme", "html_url": "https://github.com/acme", "type": "Organization"},
            "html_url": f"https://github.com/{repo}",
            "description": "Widgets, gadgets and gizmos",
            "default_branch": "main",
        },
        "organization": {"login": "acme", "id": 9919, "url": "https://api.github.com/orgs/acme"},
        "sender": user,
    }


@dataclass(frozen=True)
class Webhook:
    """One signed webhook: the path-independent part of the request (Host and path come later)."""

    delivery: str
    body: bytes
    signature: str

    def request(self, path: str, port: int) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {HOST}:{port}\r\n"
            "User-Agent: GitHub-Hookshot/bench\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "X-GitHub-Event: issues\r\n"
            f"X-GitHub-Delivery: {self.delivery}\r\n"
            f"X-Hub-Signature-256: sha256={self.signature}\r\n"
            "\r\n"
        )
        return head.encode() + self.body


def make_webhooks(first_number: int, count: int) -> list[Webhook]:
    out = []
    for number in range(first_number, first_number + count):
        body = json.dumps(issue_payload(number), separators=(",", ":")).encode()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        out.append(Webhook(str(uuid.uuid4()), body, sig))
    return out


@dataclass
class Sample:
    sent_at: float  # wall clock (time.time()) when the request was due (open loop) or written: e2e starts here
    latency: float  # seconds from then to the whole answer read
    status: int  # 0 on a transport error
    event_id: str | None
    error: str | None = None


@dataclass
class LoadResult:
    samples: list[Sample]
    started_at: float  # wall clock
    finished_at: float  # wall clock
    elapsed: float  # seconds (perf_counter)
    client_cpu: float  # CPU seconds of this process during the run
    max_lag: float = 0.0  # open loop: how late the generator wrote a request, at worst (seconds)
    connections: int = 0  # open loop: connections it needed

    def accepted(self) -> list[Sample]:
        return [s for s in self.samples if s.status in (200, 202) and s.event_id]

    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(s.status) if s.status else "transport_error" for s in self.samples))

    def errors(self) -> list[str]:
        return sorted({s.error for s in self.samples if s.error})[:5]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server_closes) of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if chunked:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return status, b"".join(parts), close
            parts.append((await reader.readexactly(size + 2))[:size])
    if length is None:
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


def _event_id(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
KEEP_ALIVE_REUSE = 4.0  # seconds: an idle connection older than this is not reused
_TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError)


async def _connect(port: int) -> Stream:
    reader, writer = await asyncio.open_connection(HOST, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def _close(stream: Stream | None) -> None:
    if stream is not None:
        stream[1].close()


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def _connection_loop(
    port: int,
    requests: Sequence[bytes],
    cursor: Iterator[int],
    out: list[Sample | None],
    timeout: float,
    stream: Stream,
) -> None:
    """One keep-alive connection: take the next request, send it, read the answer, repeat."""
    conn: Stream | None = stream
    try:
        for i in cursor:
            sent_at, started = time.time(), time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    if conn is None:
                        conn = await _connect(port)
                        sent_at, started = time.time(), time.perf_counter()
                    conn[1].write(requests[i])
                    status, body, closes = await _read_response(conn[0])
            except _TRANSPORT_ERRORS as exc:
                out[i] = Sample(sent_at, time.perf_counter() - started, 0, None, _error(exc))
                _close(conn)
                conn = None
                continue
            latency = time.perf_counter() - started
            out[i] = Sample(sent_at, latency, status, _event_id(body) if status in (200, 202) else None)
            if closes:
                _close(conn)
                conn = None
    finally:
        _close(conn)


async def fire(port: int, requests: Sequence[bytes], concurrency: int, timeout: float) -> LoadResult:
    """Closed-loop load: ``concurrency`` connections (opened before the clock starts) share the requests."""
    concurrency = max(1, min(concurrency, len(requests)))
    streams = await asyncio.gather(*(_connect(port) for _ in range(concurrency)))
    out: list[Sample | None] = [None] * len(requests)
    cursor = iter(range(len(requests)))
    cpu0, wall0, t0 = time.process_time(), time.time(), time.perf_counter()
    await asyncio.gather(*(_connection_loop(port, requests, cursor, out, timeout, s) for s in streams))
    elapsed, wall1, cpu = time.perf_counter() - t0, time.time(), time.process_time() - cpu0
    samples = [s if s is not None else Sample(wall0, 0.0, 0, None, "not sent") for s in out]
    return LoadResult(samples, wall0, wall1, elapsed, cpu)


async def fire_open(
    port: int, requests: Sequence[bytes], rate: float, timeout: float, warm_connections: int = 16
) -> LoadResult:
    """Open-loop load at ``rate`` requests/s (see the module)."""
    now = time.perf_counter()
    idle: list[tuple[Stream, float]] = [
        (s, now) for s in await asyncio.gather(*(_connect(port) for _ in range(warm_connections)))
    ]
    opened = len(idle)

    def take() -> Stream | None:
        """The most recently used free connection the server has not closed (uvicorn closes a keep-alive
        connection after 5 s idle: a provider's client would not reuse it either)."""
        while idle:
            stream, used = idle.pop()
            if time.perf_counter() - used < KEEP_ALIVE_REUSE and not stream[0].at_eof():
                return stream
            _close(stream)
        return None

    out: list[Sample | None] = [None] * len(requests)
    tasks: set[asyncio.Task[None]] = set()
    max_lag = 0.0

    async def one(i: int, due_wall: float, due_perf: float) -> None:
        nonlocal opened
        conn = take()
        try:
            async with asyncio.timeout(timeout):
                if conn is None:
                    opened += 1
                    conn = await _connect(port)
                conn[1].write(requests[i])
                status, body, closes = await _read_response(conn[0])
        except _TRANSPORT_ERRORS as exc:
            out[i] = Sample(due_wall, time.perf_counter() - due_perf, 0, None, _error(exc))
            _close(conn)
            return
        out[i] = Sample(due_wall, time.perf_counter() - due_perf, status, _event_id(body) if status < 300 else None)
        if closes:
            _close(conn)
        else:
            idle.append((conn, time.perf_counter()))

    cpu0, wall0, t0 = time.process_time(), time.time(), time.perf_counter()
    for i in range(len(requests)):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        max_lag = max(max_lag, time.perf_counter() - due)
        task = asyncio.create_task(one(i, wall0 + (due - t0), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    elapsed, wall1, cpu = time.perf_counter() - t0, time.time(), time.process_time() - cpu0
    for conn, _ in idle:
        _close(conn)
    samples = [s if s is not None else Sample(wall0, 0.0, 0, None, "not sent") for s in out]
    return LoadResult(samples, wall0, wall1, elapsed, cpu, max_lag=max_lag, connections=opened)


async def run_idle(port: int, requests: Sequence[bytes], gap: float, timeout: float) -> LoadResult:
    """Send one request at a time, ``gap`` seconds apart: each on its own (untimed) connection."""
    samples: list[Sample] = []
    wall0, t0, cpu0 = time.time(), time.perf_counter(), time.process_time()
    for i, req in enumerate(requests):
        if i:
            await asyncio.sleep(gap)
        samples.extend((await fire(port, [req], 1, timeout)).samples)
    return LoadResult(samples, wall0, time.time(), time.perf_counter() - t0, time.process_time() - cpu0)
