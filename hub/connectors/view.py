"""The normalised view of an event: the business object, the actor and the action, from the spec."""

from __future__ import annotations

import fnmatch
from typing import Any

from hub.connectors.parse import filled
from hub.connectors.spec import ViewSpec, ViewValue


def fill(value: ViewValue, payload: Any) -> str:
    """The first template whose fields all exist (as text), filled in; '' when none does."""
    return filled([value] if isinstance(value, str) else value, payload) or ""


def empty_view() -> dict[str, Any]:
    return {
        "object": {"kind": "", "id": "", "title": "", "url": "", "state": ""},
        "actor": {"name": "", "email": "", "id": ""},
        "action": "",
    }


def render_view(spec: ViewSpec, payload: Any) -> dict[str, Any]:
    return {
        "object": {k: fill(v, payload) for k, v in spec.object.model_dump().items()},
        "actor": {k: fill(v, payload) for k, v in spec.actor.model_dump().items()},
        "action": fill(spec.action, payload),
    }


def view_of(views: dict[str, ViewSpec], event_type: str, payload: Any) -> dict[str, Any]:
    """The view of the first pattern matching the event type; every key present, empty when unknown."""
    for pattern, spec in views.items():
        if fnmatch.fnmatchcase(event_type, pattern):
            return render_view(spec, payload)
    return empty_view()
