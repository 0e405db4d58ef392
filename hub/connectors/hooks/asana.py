"""Asana webhooks: a secret learned at the handshake, batches of compact events, heartbeats.

Docs: https://developers.asana.com/docs/webhooks-guide ("The webhook handshake", "Receiving events",
"Webhook heartbeat events", "Webhook security"); event schema: https://developers.asana.com/reference/events.

- Handshake: while the app's ``POST /webhooks`` is in flight, Asana POSTs to the target with ``X-Hook-Secret``
  ("This is the only time it will be transmitted"); the target answers 200 or 204 echoing that header. The
  secret is learned here: ingest stores it only while the source has none (else 409), so a second handshake
  cannot replace it; an admin clearing the source's secret re-arms it.
- Events: ``X-Hook-Signature`` is the hex HMAC-SHA256 of the body with that secret (the spec checks it);
  the body is ``{"events": [...]}``, one hub event per item, typed ``resource.resource_type``.``action``.
- Heartbeat: "an empty payload" (``events: []``) at the handshake and every eight hours, signed like any
  delivery. It becomes one ``heartbeat`` event, stored and never routed: the events list then shows the
  webhook is alive and its learned secret verifies, and every delivery hub answers 2xx has a stored row.
- No delivery id (Asana sends none): no dedup key.
- The answer is ``200`` (never ``202``): "A delivery succeeds when your webhook server responds to a webhook
  event with a 200 OK or 204 No Content response code" (heartbeats section).
- A story (a comment, or a system story such as "marked complete") belongs to the task it is on: its
  subject is that task's, so it lands in the task's thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hub.connectors.connector import Handshake, Receipt, Reply, SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, event_for, lookup, parse_payload, storable
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest

SECRET_HEADER = "x-hook-secret"
HEARTBEAT = "heartbeat"


def subject_of(item: dict[str, Any]) -> str | None:
    """The business object: the task a story is on, else the resource itself (``task:<gid>``)."""
    kind, gid = lookup(item, "resource.resource_type"), lookup(item, "resource.gid")
    parent_kind, parent_gid = lookup(item, "parent.resource_type"), lookup(item, "parent.gid")
    if kind == "story" and parent_kind == "task" and isinstance(parent_gid, str | int):
        return storable(f"task:{parent_gid}", 300)
    if isinstance(kind, str) and isinstance(gid, str | int):
        return storable(f"{kind}:{gid}", 300)
    return None


class Hooks(SpecHooks):
    """The handshake, one event per item of ``events[]``, a heartbeat as one ignored event."""

    secret_headers = frozenset({SECRET_HEADER})

    def handshake(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest) -> Handshake | None:
        offered = (req.header(SECRET_HEADER) or "").strip()
        if req.method != "POST" or not offered:
            return None
        return Handshake(Reply(200, b"", "text/plain", (("X-Hook-Secret", offered),)), learn_secret=offered)

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        body = parse_payload(spec, req)
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            raise ParseError("the body has no events list")
        if not events:
            return [ParsedEvent(body, HEARTBEAT, None, None, ignored=True)]
        items = [item for item in events if isinstance(item, dict)]
        if not items:
            raise ParseError("the events list holds no event objects")
        return [replace(event_for(spec, req, item), subject=subject_of(item)) for item in items]

    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply:
        return replace(super().reply(spec, receipts), status=200)
