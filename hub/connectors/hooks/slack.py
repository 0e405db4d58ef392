"""Slack Events API: the envelope's ``type`` says what a request is.

The signature (``v0:<timestamp>:<body>``) and the ``url_verification`` challenge are in the spec. What
the spec cannot say: an ``event_callback`` is typed by its inner ``event.type`` (message, app_mention…),
while Slack's own notices carry no inner event and are typed by the envelope (``url_verification``,
answered by the spec's challenge; ``app_rate_limited``, stored and never routed).
https://api.slack.com/apis/events-api#callback-field , https://api.slack.com/events/app_rate_limited
"""

from __future__ import annotations

from hub.connectors.connector import SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, event_for, loads_json, storable
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest


class Hooks(SpecHooks):
    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        payload = loads_json(req.body)
        if not isinstance(payload, dict):
            raise ParseError("an Events API body is a JSON object")
        kind = payload.get("type")
        if kind == "event_callback":
            return [event_for(spec, req, payload, own_payload=False)]
        if not isinstance(kind, str) or not kind:
            raise ParseError("the body has no type", "missing_event_type")
        kind = storable(kind, 200)
        return [ParsedEvent(payload, kind, None, None, ignored=kind in spec.handshake.ignore_types)]
