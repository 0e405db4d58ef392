"""The admin page: one static HTML file that drives the management API with the operator's key."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["admin"])
_PAGE = Path(__file__).resolve().parent.parent / "admin" / "index.html"


@router.get("/admin", response_class=HTMLResponse, summary="Admin page: events, dead letters, breakers")
async def admin_page() -> HTMLResponse:
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))
