"""Microsoft Graph change notifications (OneDrive / SharePoint drives and lists, and any Graph resource).

Docs (microsoftgraph/microsoft-graph-docs-contrib):
https://learn.microsoft.com/graph/change-notifications-delivery-webhooks (validation, payload, clientState) and
https://learn.microsoft.com/graph/change-notifications-lifecycle-events (lifecycle notifications).

- Validation: Graph POSTs ``?validationToken=<url-encoded token>`` to the notification URL (and to the
  lifecycle notification URL); the answer is ``200``, ``text/plain``, the *decoded* token, within 10 s.
  Answered at once, before anything else, for POST and GET.
- Each item of ``value[]`` is one notification; its ``clientState`` must equal the secret the subscription
  was created with. Items that do not are dropped (logged); a request with none valid is refused (401).
  The clientState is the source's secret ("should remain secret"): it is left out of the event's payload.
- A change is typed by ``changeType`` (``created``, ``updated``, ``deleted``); a lifecycle notification
  (``lifecycleEvent``: ``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``) by
  ``lifecycle.<event>``. Notifications say *that* something changed, not what: a drive subscription sends the
  same item for every change, so a repeat (same subscription, resource and change type) counts only within
  the spec's dedup window.
- With ``fetch_changes`` (hub/storage), change notifications are stored, not routed: hub reads the drive's delta
  and posts ``file.*`` / ``folder.*`` events (their view has the item's path and size); lifecycle notifications
  stay routable and hub acts on them (renews, re-creates, resyncs).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from typing import Any

from hub.connectors.connector import Handshake, Reply, SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, dedup_key, event_for, loads_json, storable
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError
from hub.storage.marking import fetched_view, mark_notifications

log = logging.getLogger("hub.connectors.microsoft_graph")
TOKEN_PARAM = "validationToken"

# what a resource path is about, for the view: the first marker found in its lower-cased segments
_KINDS = (
    ("drive", ("drive", "drives", "root")),
    ("list", ("lists",)),
    ("chat_message", ("chats", "channels")),
    ("message", ("messages", "mailfolders")),
    ("event", ("events", "calendar", "calendars")),
    ("contact", ("contacts",)),
)


def _items(req: RawRequest) -> list[Any]:
    try:
        body = loads_json(req.body)
    except ParseError:
        return []
    value = body.get("value") if isinstance(body, dict) else None
    return value if isinstance(value, list) else []


def _client_state(item: Any) -> str | None:
    state = item.get("clientState") if isinstance(item, dict) else None
    return state if isinstance(state, str) else None


def _valid(item: Any, secret: str) -> bool:
    state = _client_state(item)
    return state is not None and hmac.compare_digest(state.encode(), secret.encode())


def resource_kind(resource: str) -> str:
    segments = [s.split("(")[0].split(":")[0] for s in resource.lower().replace("\\", "/").split("/") if s]
    for kind, markers in _KINDS:
        if any(s in markers for s in segments):
            return kind
    return "resource" if resource else ""


class Hooks(SpecHooks):
    """Validation token, clientState per item, one event per item."""

    def handshake(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest) -> Handshake | None:
        if req.method in ("POST", "GET") and TOKEN_PARAM in req.query:
            # the query is already URL-decoded; text/plain and nosniff: the token is echoed, never interpreted
            return Handshake(Reply.text(200, req.query[TOKEN_PARAM], (("X-Content-Type-Options", "nosniff"),)))
        return None

    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None:
        states = [s for s in map(_client_state, _items(req)) if s is not None]
        if not states:
            raise VerificationError("missing_signature", "no notification in value[] carries a clientState")
        if not secret:
            raise VerificationError("bad_signature", "the source has no secret to verify with")
        if not any(hmac.compare_digest(s.encode(), secret.encode()) for s in states):
            raise VerificationError("bad_signature", "no notification's clientState equals the source's secret")

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        items = _items(req)
        secret = source.secret or ""
        valid = [item for item in items if secret and _valid(item, secret)]
        if len(valid) < len(items):
            log.warning(
                "notifications dropped: clientState does not match",
                extra={"source_id": source.id, "dropped": len(items) - len(valid), "kept": len(valid)},
            )
        if not valid:
            raise ParseError("no notification with a valid clientState in value[]")
        return mark_notifications(spec.id, source.settings, [self._event(spec, req, item) for item in valid])

    def _event(self, spec: ConnectorSpec, req: RawRequest, item: dict[str, Any]) -> ParsedEvent:
        event = event_for(spec, req, {k: v for k, v in item.items() if k != "clientState"})
        subscription = str(item.get("subscriptionId") or "")
        lifecycle = item.get("lifecycleEvent")
        if isinstance(lifecycle, str) and lifecycle:
            kind = storable(f"lifecycle.{lifecycle}", 200)
            key = f"{subscription}|lifecycle|{lifecycle}"
        else:
            kind = event.type
            key = f"{subscription}|{item.get('resource') or ''}|{kind}"
        return replace(event, type=kind, dedup_key=dedup_key(key) if subscription else None)

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        view = fetched_view(super().view(spec, event_type, payload), event_type, payload)
        resource = payload.get("resource") if isinstance(payload, dict) else None
        if isinstance(resource, str) and not view["object"]["kind"]:
            view["object"]["kind"] = resource_kind(resource)
        return view
