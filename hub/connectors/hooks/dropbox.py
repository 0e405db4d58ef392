"""Dropbox webhooks: everything is in the spec (``connectors/dropbox.yaml``) but the answer's status.

Doc: https://www.dropbox.com/developers/reference/webhooks — "Each request that results in a non-200
response code or times out will be re-attempted over the course of about ten minutes": a stored
notification is answered ``200``, not ``202``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hub.connectors.connector import Receipt, Reply, SpecHooks
from hub.connectors.spec import ConnectorSpec


class Hooks(SpecHooks):
    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply:
        return replace(super().reply(spec, receipts), status=200)
