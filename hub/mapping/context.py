"""The one builder of what a mapping sees: the payload, the normalised view, the event and the source."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class EventForMapping:
    """What a mapping reads of a stored event (besides the connector, mapping and directory)."""

    body: bytes
    payload_text: str | None
    headers: dict[str, str]
    event_id: str
    event_type: str
    source_id: str
    connector: str
    subject: str | None
    received_at: float
    source_name: str

    @classmethod
    def of(cls, row: Any, source_name: str) -> EventForMapping:
        """From a row holding ``tables.EVENT_FOR_MAPPING`` and the delivery's ``event_id``."""
        return cls(
            body=row.body,
            payload_text=row.payload,
            headers=row.headers,
            event_id=row.event_id,
            event_type=row.type,
            source_id=row.source_id,
            connector=row.connector,
            subject=row.subject,
            received_at=row.received_at,
            source_name=source_name,
        )


def context_for(event: EventForMapping, spec: ConnectorSpec | None, directory: Directory | None) -> dict[str, Any]:
    """The mapping context of a stored event (its payload parsed as stored: ParseError when it cannot be)."""
    return mapping_context(
        payload=stored_payload(event.payload_text, event.body, event.headers, spec),
        spec=spec,
        event_id=event.event_id,
        event_type=event.event_type,
        source_id=event.source_id,
        connector=event.connector,
        subject=event.subject,
        received_at=event.received_at,
        source_name=event.source_name,
        directory=directory,
    )
