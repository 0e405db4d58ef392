"""Google Drive push notifications (watch channels on ``files`` or ``changes``).

Doc: https://developers.google.com/workspace/drive/api/guides/push ("Receive notifications").

A notification has an empty body: everything is in ``X-Goog-*`` headers. The channel token the app set
when it created the channel comes back in ``X-Goog-Channel-Token`` (the spec checks it, constant time).
This module builds each event's payload from the headers::

    {"channel": {"id", "expiration"}, "message_number": 10,
     "resource": {"id", "uri", "state", "kind": "file" | "changes" | "", "file_id", "drive_id", "url"},
     "changed": ["content", "properties"]}

``resource.url`` is a link a person can open: the file (``files.watch``), the shared drive or Drive
itself (``changes.watch``). The notification says what changed, never the file's name: issue 8 fetches it.
The dedup key is the channel id and the message number (both always present, says the doc).
With ``fetch_changes`` (hub/storage) a notification is stored, not routed: hub reads ``changes.list`` and posts
``file.*`` / ``folder.*`` events (their view has the item's path and size).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from hub.connectors.connector import SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, dedup_key, event_for, storable
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest
from hub.storage.marking import fetched_view, mark_notifications

# The states the doc lists; "changed" is the state its own example for a ``changes`` channel shows
# (its table says "change"): both are the same event. Other states may be added by Google ("you might
# receive unexpected event types ... gracefully ignore these"): stored, never routed.
KNOWN_STATES = frozenset({"sync", "add", "remove", "update", "trash", "untrash", "change"})
ALIASES = {"changed": "change"}
DRIVE_URL = "https://drive.google.com/"


def _header(req: RawRequest, name: str) -> str:
    return (req.header(name) or "").strip()


def _resource(uri: str) -> dict[str, str]:
    """What the version-specific resource URI says: a file's id, or a changes feed (and its shared drive)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return {"kind": "", "file_id": "", "drive_id": "", "url": DRIVE_URL}
    segments = [s for s in parts.path.split("/") if s]
    # /drive/v3/files/{fileId} (or v2); /drive/v3/changes
    if len(segments) >= 4 and segments[0] == "drive" and segments[2] == "files":
        file_id = segments[3]
        return {
            "kind": "file",
            "file_id": file_id,
            "drive_id": "",
            "url": f"https://drive.google.com/open?id={quote(file_id, safe='')}",
        }
    if len(segments) >= 3 and segments[0] == "drive" and segments[2] == "changes":
        drive_id = (parse_qs(parts.query).get("driveId") or [""])[0]
        url = f"https://drive.google.com/drive/folders/{quote(drive_id, safe='')}" if drive_id else DRIVE_URL
        return {"kind": "changes", "file_id": "", "drive_id": drive_id, "url": url}
    return {"kind": "", "file_id": "", "drive_id": "", "url": DRIVE_URL}


def payload_of(req: RawRequest) -> dict[str, Any]:
    """The event as the headers tell it (never the channel token: it is the source's secret)."""
    state = _header(req, "x-goog-resource-state")
    state = ALIASES.get(state, state)
    number = _header(req, "x-goog-message-number")
    uri = _header(req, "x-goog-resource-uri")
    changed = [c.strip() for c in _header(req, "x-goog-changed").split(",") if c.strip()]
    return {
        "channel": {"id": _header(req, "x-goog-channel-id"), "expiration": _header(req, "x-goog-channel-expiration")},
        "message_number": int(number) if number.isascii() and number.isdigit() and len(number) < 19 else number,
        "resource": {"id": _header(req, "x-goog-resource-id"), "uri": uri, "state": state, **_resource(uri)},
        "changed": changed,
    }


class Hooks(SpecHooks):
    """One event per notification, its payload built from the headers; ``sync`` is stored, not routed."""

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        payload = payload_of(req)
        state = payload["resource"]["state"]
        if not state:
            raise ParseError("the event type is missing (header X-Goog-Resource-State)", "missing_event_type")
        event = event_for(spec, req, payload)
        channel, number = payload["channel"]["id"], _header(req, "x-goog-message-number")
        parsed = replace(
            event,
            type=storable(state, 200),
            dedup_key=dedup_key(f"{channel}:{number}") if channel and number else None,
            ignored=event.ignored or state not in KNOWN_STATES,
        )
        return mark_notifications(spec.id, source.settings, [parsed])

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        return fetched_view(super().view(spec, event_type, payload), event_type, payload)
