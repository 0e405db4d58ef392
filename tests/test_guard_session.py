"""The API guard lets a signed-in console's session cookie through (the dependency checks its scope and
CSRF header), and refuses a forged one before reading any body."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from hub.auth.principal import Principal
from hub.auth.session import SESSION_COOKIE


async def test_a_console_session_passes_the_guard_and_a_forged_one_does_not(app: FastAPI) -> None:
    session = app.state.auth.sessions.session(Principal("oidc", "sub-1", "marie@acme.example", "read"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        client.cookies.set(SESSION_COOKIE, session)
        ok = await client.get("/api/v1/sources")
        assert ok.status_code == 200, ok.text
        client.cookies.set(SESSION_COOKIE, "forged")
        refused = await client.post("/api/v1/sources", content=b"x" * 1_000_000, headers={"X-Hub-Console": "1"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
