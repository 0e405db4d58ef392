"""Dropbox webhooks: everything is in the spec (``connectors/dropbox.yaml``) but the answer's status, and what
fetch-on-notify changes (hub/storage).

Doc: https://www.dropbox.com/developers/reference/webhooks — "Each request that results in a non-200
response code or times out will be re-attempted over the course of about ten minutes": a stored
notification is answered ``200``, not ``202``. With ``fetch_changes`` the notification is stored, not routed,
and hub fetches what changed (``file.*`` / ``folder.*`` events); their view has the item's path and size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hub.connectors.connector import Receipt, Reply, SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest
from hub.storage.marking import fetched_view, mark_notifications


class Hooks(SpecHooks):
    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        return mark_notifications(spec.id, source.settings, super().split(spec, source, req, now))

    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply:
        return replace(super().reply(spec, receipts), status=200)

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        return fetched_view(super().view(spec, event_type, payload), event_type, payload)
