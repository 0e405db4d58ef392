"""Errors with a stable machine-readable code, answered as JSON."""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    """An error the API answers as ``{"error": {"code": …, "message": …}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def not_found(what: str, ident: str) -> HubError:
    return HubError(404, f"{what}_not_found", f"no {what} with id {ident!r}")


def invalid(message: str, **details: Any) -> HubError:
    return HubError(422, "invalid_config", message, **details)
