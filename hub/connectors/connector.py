"""A connector at run time: its spec, plus a hooks module where the spec cannot say it.

The spec (one YAML file under ``connectors/``) is the default for everything. A provider whose handshake,
signature, batching or answer a spec cannot express names a module of ``hub.connectors.hooks`` in its
spec (``hooks: hubspot``); that module's ``Hooks`` class subclasses :class:`SpecHooks` and overrides only
what it needs. Every step is pure: the request, the source's secrets and settings and the clock are
passed in; the ingest pipeline (``hub/ingest/core.py``) does the I/O.

    request ─▶ handshake? ─▶ verify ─▶ split into events ─▶ challenge? ─▶ (store) ─▶ reply
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from hub.connectors.parse import ParsedEvent, lookup, parse
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, verify
from hub.connectors.view import view_of
from hub.errors import HubError


@dataclass(frozen=True)
class Reply:
    """A whole HTTP answer: status, bytes, media type and extra headers."""

    status: int
    body: bytes = b""
    media_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), "application/json", headers)

    @classmethod
    def text(cls, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, text.encode(), "text/plain; charset=utf-8", headers)


@dataclass(frozen=True)
class Handshake:
    """A handshake answered before any verification; ``learn_secret`` is stored as the source's secret
    (Asana's ``X-Hook-Secret``)."""

    reply: Reply
    learn_secret: str | None = None


@dataclass(frozen=True)
class SourceContext:
    """What a connector sees of the source a request is for."""

    id: str
    secret: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)
    ingest_url: str = ""


@dataclass(frozen=True)
class Receipt:
    """What became of one event of a request: its id, and whether it was a repeat of a stored one."""

    event_id: str
    duplicate: bool


class ConnectorHooks(Protocol):
    """The steps of receiving a request. :class:`SpecHooks` implements each from the spec."""

    secret_headers: ClassVar[frozenset[str]]

    def handshake(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest) -> Handshake | None: ...

    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None: ...

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]: ...

    def challenge(self, spec: ConnectorSpec, events: Sequence[ParsedEvent]) -> Reply | None: ...

    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply: ...

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]: ...

    def error_reply(self, spec: ConnectorSpec, error: HubError) -> Reply | None: ...

    def stored_body(self, spec: ConnectorSpec, req: RawRequest) -> bytes: ...


class SpecHooks:
    """Every step as the spec says. A hooks module subclasses this and overrides what it must."""

    secret_headers: ClassVar[frozenset[str]] = frozenset()  # header names never stored with an event

    def handshake(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest) -> Handshake | None:
        echo = spec.handshake.query_echo
        if req.method == "GET" and echo and echo.param in req.query:
            return Handshake(Reply.text(200, req.query[echo.param], (("X-Content-Type-Options", "nosniff"),)))
        return None

    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None:
        verify(spec.signature_for(source.settings.get("signature")), secret, req, now, source.settings)

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        return [parse(spec, req)]

    def challenge(self, spec: ConnectorSpec, events: Sequence[ParsedEvent]) -> Reply | None:
        ch = spec.handshake.challenge
        if ch and len(events) == 1 and str(lookup(events[0].payload, ch.field)) == ch.equals:
            return Reply.json(200, {"challenge": lookup(events[0].payload, ch.echo_field)})
        return None

    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply:
        if len(receipts) == 1:
            r = receipts[0]
            return (
                Reply.json(200, {"event_id": r.event_id, "duplicate": True})
                if r.duplicate
                else (Reply.json(202, {"event_id": r.event_id}))
            )
        new = [r for r in receipts if not r.duplicate]
        body: dict[str, Any] = {
            "event_id": receipts[0].event_id if receipts else None,
            "event_ids": [r.event_id for r in receipts],
            "duplicates": len(receipts) - len(new),
        }
        return Reply.json(202 if new else 200, body)

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        return view_of(spec.views, event_type, payload)

    def error_reply(self, spec: ConnectorSpec, error: HubError) -> Reply | None:
        """A refusal in the provider's own format; None: hub's JSON error body."""
        return None

    def stored_body(self, spec: ConnectorSpec, req: RawRequest) -> bytes:
        """The raw body as kept with the events (after verification): a credential it carries removed."""
        return req.body


class HooksError(Exception):
    """A spec names a hooks module that cannot be loaded."""


_loaded: dict[str | None, ConnectorHooks] = {}


def hooks_for(spec: ConnectorSpec) -> ConnectorHooks:
    """The hooks of a spec: its module's ``Hooks`` (loaded once), or the spec's own steps."""
    name = spec.hooks
    found = _loaded.get(name)
    if found is not None:
        return found
    if name is None:
        found = SpecHooks()
    else:
        try:
            module = importlib.import_module(f"hub.connectors.hooks.{name}")
            found = module.Hooks()
        except (ImportError, AttributeError, TypeError) as exc:
            raise HooksError(f"connector {spec.id}: hooks module {name!r} cannot be loaded: {exc}") from None
    _loaded[name] = found
    return found
