"""The conformance kit for connectors: fixtures as provider requests, signers from the providers' docs,
and hub's side of receiving (handshake, verify, split) called as the ingest pipeline calls it.

A fixture is ``tests/fixtures/<connector>/<name>.json``::

    {"headers": {...}, "payload": {...} | "body": "raw text", "method": "POST", "query": "a=b",
     "settings": {...source settings...},
     "expect": {"type", "dedup_key", "subject", "ignored"?}  or  {"events": [{...}, ...]}}

A signer is ``tests/conformance/signers/<connector with _ for ->.py``, written from the provider's
documentation (never from hub's code)::

    ID, SECRET, WRONG_SECRET
    BODY_SIGNED: bool        tampering the body breaks the proof
    TIMESTAMPED: bool        a request signed an hour ago is refused (stale_timestamp)
    PROOF_HEADERS: list[str] removing any one of them is missing_signature
    SETTINGS: dict           extra source settings every request needs (merged under the fixture's)
    def sign(req: Req, secret: str, settings: dict, now: float) -> Req
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.connector import Handshake, SourceContext, hooks_for
from hub.connectors.parse import ParsedEvent
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXPECTED = Path(__file__).resolve().parent.parent / "expected"
CATALOGUE = builtin_catalogue()
SPECS = CATALOGUE.all()
NOW = 1_700_000_000.0
SOURCE_ID = "src_conformance"
INGEST_URL = f"https://hub.example.com/hooks/{SOURCE_ID}"


@dataclass(frozen=True)
class Req:
    """A request as a provider sends it."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    url: str = INGEST_URL  # with the query string, if any

    def with_headers(self, **changes: str) -> Req:
        return replace(self, headers={**self.headers, **changes})

    def without(self, name: str) -> Req:
        return replace(self, headers={k: v for k, v in self.headers.items() if k.lower() != name.lower()})

    def raw(self) -> RawRequest:
        query = self.url.partition("?")[2]
        return RawRequest(
            body=self.body,
            headers={k.lower(): v for k, v in self.headers.items()},
            method=self.method,
            url=self.url,
            query=dict(parse_qsl(query, keep_blank_values=True)),
        )


def signer_modules() -> dict[str, ModuleType]:
    import tests.conformance.signers as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    return {m.ID: m for m in mods}


SIGNERS = signer_modules()


def fixture_files(connector_id: str) -> list[Path]:
    d = FIXTURES / connector_id
    return sorted(d.glob("*.json")) if d.is_dir() else []


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def body_of(fixture: dict[str, Any]) -> bytes:
    """The bytes a provider sends: the raw ``body`` as given, else compact UTF-8 JSON of ``payload``."""
    if "body" in fixture:
        return str(fixture["body"]).encode()
    return json.dumps(fixture["payload"], separators=(",", ":"), ensure_ascii=False).encode()


def request_of(fixture: dict[str, Any]) -> Req:
    query = fixture.get("query", "")
    url = INGEST_URL + (f"?{query}" if query else "")
    return Req(body_of(fixture), dict(fixture["headers"]), fixture.get("method", "POST"), url)


def expected_events(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    expect = fixture["expect"]
    return list(expect["events"]) if "events" in expect else [expect]


def settings_for(connector_id: str, fixture: dict[str, Any] | None = None) -> dict[str, Any]:
    base = dict(getattr(SIGNERS.get(connector_id), "SETTINGS", {}) or {})
    return {**base, **((fixture or {}).get("settings") or {})}


def signed(spec: ConnectorSpec, fixture: dict[str, Any], now: float = NOW, secret: str | None = None) -> Req:
    assert spec.id in SIGNERS, f"connector {spec.id}: add tests/conformance/signers/ for its documented scheme"
    mod = SIGNERS[spec.id]
    req: Req = mod.sign(request_of(fixture), secret or mod.SECRET, settings_for(spec.id, fixture), now)
    return req


def context(spec: ConnectorSpec, secret: str | None, settings: dict[str, Any]) -> SourceContext:
    return SourceContext(SOURCE_ID, secret, settings, INGEST_URL)


def handshake(spec: ConnectorSpec, req: Req, secret: str | None, settings: dict[str, Any]) -> Handshake | None:
    return hooks_for(spec).handshake(spec, context(spec, secret, settings), req.raw())


def verify(spec: ConnectorSpec, req: Req, secret: str | None, settings: dict[str, Any], now: float = NOW) -> None:
    hooks_for(spec).verify(spec, context(spec, secret, settings), secret, req.raw(), now)


def receive(
    spec: ConnectorSpec, req: Req, secret: str | None, settings: dict[str, Any], now: float = NOW
) -> list[ParsedEvent]:
    """What ingest does before storing: no handshake, verified, split into events."""
    assert handshake(spec, req, secret, settings) is None, "a signed delivery was taken for a handshake"
    verify(spec, req, secret, settings, now)
    return hooks_for(spec).split(spec, context(spec, secret, settings), req.raw(), now)
