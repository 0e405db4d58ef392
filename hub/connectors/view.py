"""The normalised view of an event: the business object, the actor and the action, from the spec."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from hub.connectors.parse import lookup
from hub.connectors.spec import ViewSpec, ViewValue

_FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


def fill(value: ViewValue, payload: Any) -> str:
    """The first template whose fields all exist (as text), filled in; '' when none does."""
    for template in [value] if isinstance(value, str) else value:
        values: dict[str, str] = {}
        for name in _FIELD.findall(template):
            found = lookup(payload, name)
            if found is None or isinstance(found, dict | list) or found == "":
                break
            values[name] = str(found)
        else:
            return _FIELD.sub(lambda m, v=values: v[m.group(1)], template)  # type: ignore[misc]
    return ""


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
