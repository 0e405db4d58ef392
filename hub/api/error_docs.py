"""Every operation documents the errors it can answer, all with the one error body they share.

FastAPI documents only 2xx and 422 (with its own body, which hub's handler replaces) by itself; the API also
answers 400 (a body that is not JSON), 401 (no or unknown key), 403 (a read key on a write), 404 (an unknown
id) and, where a route declares it, 409.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from hub.api.openapi_docs import enrich

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, e.g. `source_not_found`."},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
_REF = {"$ref": "#/components/schemas/Error"}


def conflict(*codes: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that may answer 409."""
    return {409: {"description": "Conflict: " + " / ".join(codes)}}


def _scopes(dependant: Dependant) -> Iterable[str]:
    for dep in dependant.dependencies:
        scope = getattr(dep.call, "hub_scope", None)
        if scope:
            yield scope
        yield from _scopes(dep)


def admin_operations(routers: Iterable[APIRouter]) -> set[tuple[str, str]]:
    """(path, method) of every operation that needs an admin key."""
    found: set[tuple[str, str]] = set()
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and "admin" in set(_scopes(route.dependant)):
                found |= {(route.path_format, m.lower()) for m in route.methods or ()}
    return found


def _expected(path: str, method: str, operation: dict[str, Any], admin: set[tuple[str, str]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if "requestBody" in operation:
        errors["400"] = "The body is not valid JSON"
    if path.startswith("/api/"):
        errors["401"] = "No API key, or an unknown one"
        if (path, method) in admin:
            errors["403"] = "This API key may only read"
    if "{" in path:
        errors["404"] = "No such object"
    return errors


def add_error_responses(schema: dict[str, Any], admin: set[tuple[str, str]]) -> None:
    """Document the error answers of every operation of an OpenAPI document, in place."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):  # hub answers 422 with its Error body
        components.pop(unused, None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code, description in _expected(path, method, operation, admin).items():
                responses.setdefault(code, {"description": description})
            if "422" in responses:
                responses["422"]["description"] = "The request does not validate (invalid_request, invalid_config)"
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    response["content"] = {"application/json": {"schema": _REF}}
            operation["responses"] = dict(sorted(responses.items()))


def document_errors(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    original = app.openapi
    admin = admin_operations(routers)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            add_error_responses(schema, admin)
            enrich(schema)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
