"""`hub serve`'s HTTP front on a real socket: webhooks answered in the protocol, everything else by the app,
in order on one connection; slow clients cut off; the API guard before any body is read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hub.app import create_asgi_app
from hub.config import Settings
from hub.front.protocol import HookFront, protocol_class
from hub.front.serve import UVICORN_SETTINGS, limits_for
from hub.runtime import Runtime
from tests.conftest import create_pipeline, make_settings
from tests.helpers import ADMIN_KEY, AUTH, github_issue, github_request
from tests.receiver import free_port


class Front:
    def __init__(self, port: int, runtime: Runtime) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.runtime = runtime
        self.source_id = ""

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=AUTH, timeout=10)


@contextlib.asynccontextmanager
async def serve_front(settings: Settings) -> AsyncIterator[Front]:
    asgi = create_asgi_app(settings)
    protocol = protocol_class(HookFront(lambda: asgi.app.state.runtime), limits_for(settings))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, http=protocol, **UVICORN_SETTINGS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    front = Front(port, asgi.app.state.runtime)
    try:
        async with front.client() as c:
            ids = await create_pipeline(c, {"kind": "webhook", "name": "t", "url": "http://127.0.0.1:9/"})
        front.source_id = ids["source_id"]
        yield front
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Front]:
    settings = make_settings(
        tmp_path, embedded_worker=False, header_timeout=0.6, min_body_rate=2000, body_rate_grace=0.5
    )
    async with serve_front(settings) as f:
        yield f


def hook_request(source_id: str, number: int, **extra_headers: str) -> bytes:
    body, headers = github_request(github_issue(number))
    headers = {**headers, **extra_headers}
    head = f"POST /hooks/{source_id} HTTP/1.1\r\nHost: hub\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def read_answers(sock: socket.socket, count: int, timeout: float = 10.0) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` HTTP answers (Content-Length framed) read off a raw socket."""
    sock.settimeout(timeout)
    data = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} answers: {data!r}")
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in a body")
            data += chunk
        out.append((int(lines[0].split(" ")[1]), headers, data[:length]))
        data = data[length:]
    return out


def connect(front: Front) -> socket.socket:
    return socket.create_connection(("127.0.0.1", front.port), timeout=10)


def closed_by_server(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server still sends until it closes the connection (fails if it does not)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_webhook_accepted_and_stored(front: Front) -> None:
    body, headers = github_request(github_issue(1))
    async with front.client() as c:
        resp = await c.post(f"/hooks/{front.source_id}", content=body, headers=headers)
        assert resp.status_code == 202, resp.text
        event_id = resp.json()["event_id"]
        detail = await c.get(f"/api/v1/events/{event_id}")
        assert detail.status_code == 200
        assert resp.headers["content-type"] == "application/json"
        bad = await c.post(f"/hooks/{front.source_id}", content=body, headers={**headers, "X-Hub-Signature-256": "x"})
        assert bad.status_code == 401
        assert bad.json()["error"]["code"] in ("bad_signature", "missing_signature")
        unknown = await c.post("/hooks/src_nope", content=body, headers=headers)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_source"


async def test_head_get_and_other_methods(front: Front) -> None:
    async with front.client() as c:
        head = await c.head(f"/hooks/{front.source_id}")
        assert head.status_code == 200 and head.content == b""
        get = await c.get(f"/hooks/{front.source_id}")
        assert get.status_code == 405 and "POST" in get.headers["allow"]
        put = await c.put(f"/hooks/{front.source_id}", content=b"{}")
        assert put.status_code == 405  # not a webhook method: the app answers
        nested = await c.post(f"/hooks/{front.source_id}/x", content=b"{}")
        assert nested.status_code == 404


async def test_pipelined_requests_answered_in_order(front: Front) -> None:
    api = f"GET /api/v1/sources/{front.source_id} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\r\n"
    batch = hook_request(front.source_id, 1) + api.encode() + hook_request(front.source_id, 2)
    batch += hook_request(front.source_id, 1)  # a repeat of the first: same event id
    with connect(front) as sock:
        sock.sendall(batch)
        answers = await asyncio.to_thread(read_answers, sock, 4)
    assert [a[0] for a in answers] == [202, 200, 202, 202]
    assert json.loads(answers[1][2])["id"] == front.source_id
    first, second, repeat = (json.loads(answers[i][2])["event_id"] for i in (0, 2, 3))
    assert first != second
    assert first != repeat  # a new delivery id: a new event (GitHub dedups by X-GitHub-Delivery)


async def test_expect_100_continue_and_chunked(front: Front) -> None:
    body, headers = github_request(github_issue(7))
    head = f"POST /hooks/{front.source_id} HTTP/1.1\r\nHost: hub\r\nContent-Length: {len(body)}\r\n"
    head += "Expect: 100-continue\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with connect(front) as sock:
        sock.sendall(head.encode())
        sock.settimeout(5)
        assert (await asyncio.to_thread(sock.recv, 100)).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        ((status, _, _),) = await asyncio.to_thread(read_answers, sock, 1)
        assert status == 202
        body2, headers2 = github_request(github_issue(8))
        head = f"POST /hooks/{front.source_id} HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers2.items()) + "\r\n"
        half = len(body2) // 2
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body2[:half], body2[half:])) + b"0\r\n\r\n"
        sock.sendall(head.encode() + chunks)
        ((status, _, _),) = await asyncio.to_thread(read_answers, sock, 1)
        assert status == 202


async def test_too_large_webhook_is_413_without_reading(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, embedded_worker=False, max_body_bytes=1000)
    async with serve_front(settings) as f:
        with connect(f) as sock:
            sock.sendall(f"POST /hooks/{f.source_id} HTTP/1.1\r\nHost: hub\r\nContent-Length: 5000000\r\n\r\n".encode())
            ((status, headers, body),) = await asyncio.to_thread(read_answers, sock, 1)
            assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"
            assert headers["connection"] == "close"
        with connect(f) as sock:  # chunked: refused once the count passes the limit
            sock.sendall(
                f"POST /hooks/{f.source_id} HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            sock.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
            ((status, _, _),) = await asyncio.to_thread(read_answers, sock, 1)
            assert status == 413


async def test_headers_that_never_finish_are_cut_off(front: Front) -> None:
    with connect(front) as sock:  # a connection that says nothing
        started = time.monotonic()
        assert await asyncio.to_thread(closed_by_server, sock, 5) == b""
        assert 0.4 < time.monotonic() - started < 3
    with connect(front) as sock:  # headers trickled, a byte at a time, never finished
        started = time.monotonic()
        reader = asyncio.create_task(asyncio.to_thread(closed_by_server, sock, 5))
        for b in b"POST /hooks/x HTTP/1.1\r\nHost: hub\r\nX-Slow: " + b"y" * 200:
            if reader.done():
                break
            with contextlib.suppress(OSError):
                sock.sendall(bytes([b]))
            await asyncio.sleep(0.02)
        data = await reader
        assert data.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("kind", ["webhook", "api"])
async def test_slow_body_is_cut_off(front: Front, kind: str) -> None:
    if kind == "webhook":
        head = f"POST /hooks/{front.source_id} HTTP/1.1\r\nHost: hub\r\nContent-Length: 100000\r\n\r\n"
    else:
        head = (
            f"POST /api/v1/sources HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
    with connect(front) as sock:
        sock.sendall(head.encode())
        started = time.monotonic()
        data = b""
        for _ in range(60):  # 100 bytes every 0.05 s: 2,000 bytes/s would be the minimum
            try:
                sock.sendall(b" " * 50)
            except OSError:
                break
            await asyncio.sleep(0.05)
            with contextlib.suppress(BlockingIOError):
                sock.setblocking(False)
                data += sock.recv(65536)
            sock.setblocking(True)
            if data:
                break
        assert data.startswith(b"HTTP/1.1 408 "), data
        assert time.monotonic() - started < 2.5
    async with front.client() as c:  # the server is fine
        assert (await c.get("/healthz")).status_code == 200


async def test_a_body_at_a_fair_pace_is_not_cut_off(front: Front) -> None:
    body, headers = github_request(github_issue(9))
    head = f"POST /hooks/{front.source_id} HTTP/1.1\r\nHost: hub\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with connect(front) as sock:
        sock.sendall(head.encode())
        step = max(len(body) // 10, 1)
        for i in range(0, len(body), step):  # ~10 pieces over ~1 s: well over 2,000 bytes/s
            sock.sendall(body[i : i + step])
            await asyncio.sleep(0.1)
        ((status, _, _),) = await asyncio.to_thread(read_answers, sock, 1)
        assert status == 202


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


async def test_unauthenticated_huge_api_body_refused_before_reading(front: Front) -> None:
    """50 MB of JSON to /api/v1/sources without a key: 401 within a second; /healthz stays quick."""
    size = 50 * 1024 * 1024
    payload = b'{"connector": "github", "name": "' + b"x" * (size - 40) + b'"}'
    latencies: list[float] = []
    stop = asyncio.Event()

    async def poll_health() -> None:
        async with httpx.AsyncClient(base_url=front.base, timeout=5) as c:
            while not stop.is_set():
                started = time.monotonic()
                assert (await c.get("/healthz")).status_code == 200
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll_health())
    await asyncio.sleep(0.1)
    for auth in ("", "Authorization: Bearer not-a-key\r\n"):
        with connect(front) as sock:
            head = f"POST /api/v1/sources HTTP/1.1\r\nHost: hub\r\n{auth}Content-Type: application/json\r\n"
            head += f"Content-Length: {len(payload)}\r\n\r\n"
            started = time.monotonic()
            sock.sendall(head.encode())
            sender = threading.Thread(target=_send_quietly, args=(sock, payload), daemon=True)
            sender.start()
            ((status, _, body),) = await asyncio.to_thread(read_answers, sock, 1)
            elapsed = time.monotonic() - started
            assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
            assert elapsed < 1.0
            sock.shutdown(socket.SHUT_RDWR)
            await asyncio.to_thread(sender.join, 10)
    stop.set()
    await poller
    assert latencies and max(latencies) < 0.5, max(latencies)


async def test_api_body_cap(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, embedded_worker=False, max_api_body_bytes=2000)
    async with serve_front(settings) as f, f.client() as c:
        big = {"connector": "github", "name": "x" * 3000, "secret": "s"}
        resp = await c.post("/api/v1/sources", json=big)
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "body_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            yield json.dumps(big).encode()

        resp = await c.post("/api/v1/sources", content=chunks(), headers={"Content-Type": "application/json"})
        assert resp.status_code == 413  # no Content-Length: counted while read
        ok = await c.post("/api/v1/sources", json={"connector": "github", "name": "small", "secret": "s"})
        assert ok.status_code == 201, ok.text
        assert (await c.get("/api/v1/sources")).status_code == 200


async def test_guard_lets_jwt_looking_tokens_through_to_the_dependency(front: Front) -> None:
    async with httpx.AsyncClient(base_url=front.base, timeout=5) as c:
        no_key = await c.get("/api/v1/sources")
        assert no_key.status_code == 401
        jwt_like = await c.get("/api/v1/sources", headers={"Authorization": "Bearer aaa.bbb.ccc"})
        assert jwt_like.status_code == 401  # refused by the dependency (it does not validate JWTs yet)
        assert jwt_like.json()["error"]["message"] == "unknown API key"
        ok = await c.get("/healthz")
        assert ok.status_code == 200


def test_settings_names(tmp_path: Path) -> None:
    s: Any = make_settings(tmp_path)
    assert (s.header_timeout, s.min_body_rate, s.body_rate_grace, s.max_api_body_bytes) == (
        10.0,
        1024.0,
        10.0,
        1024 * 1024,
    )
