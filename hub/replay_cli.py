"""`hub replay`: start a bulk retry over the API and follow its progress."""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def run_replay(url: str, key: str, body: dict[str, Any], poll: float = 0.3) -> int:
    console = Console(stderr=True)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        resp = client.post("/api/v1/deliveries/bulk-retry", json=body)
        if resp.status_code != 202:
            console.print(f"[red]hub answered {resp.status_code}[/red]: {resp.text}")
            return 1
        job = resp.json()
        with Progress(
            TextColumn("retrying dead letters"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("retry", total=job["total"] or 1)
            while job["status"] not in ("done", "failed"):
                time.sleep(poll)
                job = client.get(f"/api/v1/jobs/{job['id']}").json()
                progress.update(task, completed=job["done"], total=max(job["total"], 1))
            progress.update(task, completed=max(job["total"], 1) if job["status"] == "done" else job["done"])
    if job["status"] == "failed":
        console.print(f"[red]job {job['id']} failed:[/red] {job.get('error')}")
        return 1
    console.print(f"job {job['id']}: {job['done']} dead letters due again")
    return 0
