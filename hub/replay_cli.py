"""`hub replay`: start a bulk retry over the API and follow its progress."""

from __future__ import annotations

import sys
import time
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ReplayFailed(Exception):
    """Why `hub replay` stops, in one line."""


def _answer_text(resp: httpx.Response) -> str:
    try:
        error = resp.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return resp.reason_phrase or "unexpected answer"


def _call(client: httpx.Client, method: str, path: str, expected: int, **kwargs: Any) -> dict[str, Any]:
    try:
        resp = client.request(method, path, **kwargs)
    except httpx.UnsupportedProtocol:
        raise ReplayFailed(f"--url {client.base_url} is not an http:// or https:// URL") from None
    except httpx.TimeoutException:
        raise ReplayFailed(f"hub at {client.base_url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise ReplayFailed(f"cannot reach hub at {client.base_url} ({type(exc).__name__}): is it running?") from None
    if resp.status_code != expected:
        raise ReplayFailed(f"hub answered {resp.status_code} {_answer_text(resp)}")
    try:
        body: dict[str, Any] = resp.json()
    except ValueError:
        raise ReplayFailed(f"{client.base_url} answered something that is not hub's API (no JSON)") from None
    return body


def run_replay(url: str, key: str, body: dict[str, Any], poll: float = 0.3) -> int:
    """Exit code: 0 done, 1 failed (with one line on stderr saying why), 2 used wrongly."""
    if not key:
        _say("hub replay: an admin API key is needed: --key or HUB_API_KEY")
        return 2
    try:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    except (httpx.InvalidURL, ValueError) as exc:
        _say(f"hub replay: --url {url!r} is not a URL: {exc}")
        return 2
    try:
        with client:
            job = _follow(client, Console(stderr=True), body, poll)
    except ReplayFailed as exc:
        _say(f"hub replay: {exc}")
        return 1
    if job["status"] == "failed":
        _say(f"hub replay: job {job['id']} failed: {job.get('error')}")
        return 1
    _say(f"job {job['id']}: {job['done']} dead letters due again")
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _follow(client: httpx.Client, console: Console, body: dict[str, Any], poll: float) -> dict[str, Any]:
    job = _call(client, "POST", "/api/v1/deliveries/bulk-retry", 202, json=body)
    with Progress(
        TextColumn("retrying dead letters"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("retry", total=job["total"] or 1)
        while job["status"] not in ("done", "failed"):
            time.sleep(poll)
            job = _call(client, "GET", f"/api/v1/jobs/{job['id']}", 200)
            progress.update(task, completed=job["done"], total=max(job["total"], 1))
        progress.update(task, completed=max(job["total"], 1) if job["status"] == "done" else job["done"])
    return job
