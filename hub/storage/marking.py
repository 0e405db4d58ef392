"""What becomes of a notification when its source fetches what changed: stored, not routed.

With ``fetch_changes`` on, the notification ("something changed") is stored as always — visible in the events
list, and named by every event its fetch produced (``payload.via.notification_event_id``) — but not routed:
the fetched events are what is posted. ``route_notifications: true`` keeps routing it too. Graph's lifecycle
notifications stay routable (hub acts on them, and whoever maintains the source may want to know).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hub.connectors.parse import ParsedEvent
from hub.storage.providers import provider_for
from hub.storage.settings import parse_settings


def fetching(connector: str, settings: Mapping[str, Any]) -> bool:
    """The source fetches changes and does not route the raw notifications."""
    if provider_for(connector) is None:
        return False
    try:
        cfg = parse_settings(settings)
    except ValueError:
        return False
    return cfg.fetch_changes and not cfg.route_notifications


def mark_notifications(connector: str, settings: Mapping[str, Any], events: list[ParsedEvent]) -> list[ParsedEvent]:
    """The events of a request, change notifications marked ignored (stored, never routed) when fetching."""
    provider = provider_for(connector)
    if provider is None or not fetching(connector, settings):
        return events
    return [
        replace(ev, ignored=True)
        if not ev.type.startswith("lifecycle.") and provider.feeds(ev.type, ev.payload) is not None
        else ev
        for ev in events
    ]


def fetched_view(view: dict[str, Any], event_type: str, payload: Any) -> dict[str, Any]:
    """A fetched event's view, with what the spec's view cannot hold: the item's path, folder and size."""
    if not event_type.startswith(("file.", "folder.")) or not isinstance(payload, dict):
        return view
    item = payload.get("item")
    if isinstance(item, dict):
        view["object"].update(path=item.get("path") or "", folder=item.get("folder") or "", size=item.get("size"))
    return view
