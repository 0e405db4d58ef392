"""The one builder of what a mapping sees: the payload, the normalised view, the event and the source."""

from __future__ import annotations

from typing import Any

from hub.connectors.connector import hooks_for
from hub.connectors.parse import ParseError, loads_json, parse_payload
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest
from hub.connectors.view import empty_view
from hub.people.directory import Directory

_EMPTY = Directory()


def stored_payload(payload_text: str | None, body: bytes, headers: dict[str, str], spec: ConnectorSpec | None) -> Any:
    """An event's payload as stored: its own JSON when it has one, else the body's JSON. Rows stored
    before events kept their own payload may hold a form body: the connector still reads those."""
    if payload_text is not None:
        return loads_json(payload_text.encode())
    try:
        return loads_json(body)
    except ParseError:
        if spec is None:
            raise
        return parse_payload(spec, RawRequest(body=body, headers=headers))


def view_for(spec: ConnectorSpec | None, event_type: str, payload: Any) -> dict[str, Any]:
    """The connector's normalised view; every key present (empty) when the connector is unknown."""
    if spec is None:
        return empty_view()
    return hooks_for(spec).view(spec, event_type, payload)


def mapping_context(
    *,
    payload: Any,
    spec: ConnectorSpec | None,
    event_id: str,
    event_type: str,
    source_id: str,
    connector: str,
    subject: str | None,
    received_at: float,
    source_name: str,
    directory: Directory | None = None,
) -> dict[str, Any]:
    """``mention(value, kind, fallback)`` names a person through the directory, resolved without I/O."""
    return {
        "mention": (directory or _EMPTY).mention,
        "payload": payload,
        "view": view_for(spec, event_type, payload),
        "event": {
            "id": event_id,
            "type": event_type,
            "source_id": source_id,
            "connector": connector,
            "subject": subject,
            "received_at": received_at,
        },
        "source": {"id": source_id, "name": source_name},
    }
