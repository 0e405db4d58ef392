"""Conformance of every connector spec in connectors/ against recorded provider deliveries.

Each spec must have fixtures under tests/fixtures/<id>/*.json: ``{"headers", "payload", "expect"}`` (and optional
``settings``, a source's settings). Every fixture is signed here with the provider's documented scheme (written
from the provider docs, not from hub's code), then verified and parsed by hub. A connector without fixtures, or
without a documented signer below, fails the suite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from standardwebhooks import Webhook

from hub.connectors.catalogue import ConnectorCatalogue, SpecError, builtin_catalogue, load_spec_file
from hub.connectors.parse import parse
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, verify
from hub.paths import builtin_dir

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CATALOGUE = builtin_catalogue()
SPECS = CATALOGUE.all()
SPEC_IDS = [s.id for s in SPECS]
FIXED_NOW = 1_700_000_000.0

Headers = dict[str, str]


# --- signers, written from each provider's documentation ---------------------------------------------------


def sign_github(body: bytes, headers: Headers, secret: str, settings: dict[str, Any]) -> Headers:
    """X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {**headers, "X-Hub-Signature-256": f"sha256={digest}"}


def _whsec_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_standard_webhooks(body: bytes, headers: Headers, secret: str, settings: dict[str, Any]) -> Headers:
    """webhook-signature: v1,<base64 HMAC-SHA256(base64-decoded whsec key, "msg_id.timestamp.body")>."""
    lower = {k.lower(): v for k, v in headers.items()}
    content = f"{lower['webhook-id']}.{lower['webhook-timestamp']}.".encode() + body
    digest = hmac.new(_whsec_key(secret), content, hashlib.sha256).digest()
    return {**headers, "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def sign_generic_hmac(body: bytes, headers: Headers, secret: str, settings: dict[str, Any]) -> Headers:
    """HMAC of the raw body; header, algorithm, encoding and prefix come from the source's settings."""
    cfg = {"header": "X-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": ""}
    cfg.update(settings.get("signature") or {})
    digest = hmac.new(secret.encode(), body, getattr(hashlib, cfg["algorithm"])).digest()
    encoded = digest.hex() if cfg["encoding"] == "hex" else base64.b64encode(digest).decode()
    return {**headers, cfg["header"]: cfg["prefix"] + encoded}


Signer = Callable[[bytes, Headers, str, dict[str, Any]], Headers]
SIGNERS: dict[str, tuple[Signer, str, str]] = {
    # id: (signer, the source secret, a different secret of the same form)
    "github": (sign_github, "It's a Secret to Everybody", "It's a Secret to Nobody"),
    "standard-webhooks": (
        sign_standard_webhooks,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_" + base64.b64encode(b"another key, 24+ bytes long").decode(),
    ),
    "generic-hmac": (sign_generic_hmac, "gen-3rIc s3cret", "gen-3rIc s3cret!"),
}


# --- fixtures ----------------------------------------------------------------------------------------------


def fixture_files(connector_id: str) -> list[Path]:
    d = FIXTURES / connector_id
    return sorted(d.glob("*.json")) if d.is_dir() else []


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def fixture_cases(specs: list[ConnectorSpec]) -> list[Any]:
    return [pytest.param(s, path, id=f"{s.id}/{path.stem}") for s in specs for path in fixture_files(s.id)]


FIXTURE_CASES = fixture_cases(SPECS)


def body_of(fixture: dict[str, Any]) -> bytes:
    """The bytes a provider would send: compact JSON, UTF-8 (non-ASCII kept as is)."""
    return json.dumps(fixture["payload"], separators=(",", ":"), ensure_ascii=False).encode()


def now_for(spec: ConnectorSpec, headers: Headers) -> float:
    """A clock 10 s after the fixture's own timestamp when the scheme has one."""
    ts_header = spec.signature.timestamp_header
    if ts_header:
        lower = {k.lower(): v for k, v in headers.items()}
        return float(lower[ts_header.lower()]) + 10
    return FIXED_NOW


def raw(body: bytes, headers: Headers) -> RawRequest:
    return RawRequest(body=body, headers={k.lower(): v for k, v in headers.items()})


def signed(spec: ConnectorSpec, fixture: dict[str, Any], body: bytes | None = None) -> tuple[bytes, Headers]:
    assert spec.id in SIGNERS, f"connector {spec.id}: add a signer written from its documented scheme"
    signer, secret, _ = SIGNERS[spec.id]
    body = body_of(fixture) if body is None else body
    return body, signer(body, dict(fixture["headers"]), secret, fixture.get("settings") or {})


def sig_spec(spec: ConnectorSpec, fixture: dict[str, Any]) -> Any:
    """The signature spec as the ingest route computes it for a source with the fixture's settings."""
    return spec.signature_for((fixture.get("settings") or {}).get("signature"))


def verification_code(spec: ConnectorSpec, fixture: dict[str, Any], req: RawRequest, secret: str | None) -> str:
    with pytest.raises(VerificationError) as info:
        verify(sig_spec(spec, fixture), secret, req, now_for(spec, dict(req.headers)))
    return info.value.code


# --- the catalogue -----------------------------------------------------------------------------------------


def test_catalogue_holds_every_connector_file() -> None:
    files = sorted(p.stem for p in builtin_dir("connectors").glob("*.yaml"))
    assert files, "no connector specs found"
    assert files == SPEC_IDS


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_id_equals_file_name(spec: ConnectorSpec) -> None:
    path = builtin_dir("connectors") / f"{spec.id}.yaml"
    assert path.is_file()
    assert load_spec_file(path).id == path.stem == spec.id


def test_a_spec_whose_id_differs_from_its_file_name_is_rejected(tmp_path: Path) -> None:
    text = (builtin_dir("connectors") / "github.yaml").read_text()
    (tmp_path / "gitlab.yaml").write_text(text)
    with pytest.raises(SpecError, match="must equal the file name"):
        ConnectorCatalogue.from_dirs(tmp_path)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_is_described_and_declares_events(spec: ConnectorSpec) -> None:
    assert spec.title.strip()
    assert spec.events, f"{spec.id} declares no events"
    assert all(isinstance(v, str) and v.strip() for v in spec.events.values())
    if spec.secret_required:
        assert spec.signature.scheme != "none", "a secret is required but nothing is verified"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_has_fixtures(spec: ConnectorSpec) -> None:
    assert fixture_files(spec.id), f"connector {spec.id}: add recorded deliveries under tests/fixtures/{spec.id}/"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_has_a_documented_signer(spec: ConnectorSpec) -> None:
    assert spec.id in SIGNERS, f"connector {spec.id}: add a signer to SIGNERS written from the provider's docs"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_declared_event_has_a_fixture(spec: ConnectorSpec) -> None:
    declared = {e for e in spec.events if "*" not in e}
    covered = {load(p)["expect"]["type"] for p in fixture_files(spec.id)}
    assert declared <= covered, f"events without a fixture: {sorted(declared - covered)}"


# --- every fixture -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_fixture_is_well_formed(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    assert set(fixture) <= {"headers", "payload", "expect", "settings"}
    assert isinstance(fixture["headers"], dict) and fixture["headers"]
    assert isinstance(fixture["payload"], dict) and fixture["payload"]
    assert set(fixture["expect"]) >= {"type", "dedup_key", "subject"}


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_signed_fixture_verifies(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    verify(sig_spec(spec, fixture), SIGNERS[spec.id][1], raw(body, headers), now_for(spec, headers))


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_tampered_body_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    tampered = body.replace(b'"', b"'", 1)
    assert tampered != body
    assert verification_code(spec, fixture, raw(tampered, headers), SIGNERS[spec.id][1]) == "bad_signature"
    assert verification_code(spec, fixture, raw(body + b" ", headers), SIGNERS[spec.id][1]) == "bad_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_wrong_secret_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    wrong = SIGNERS[spec.id][2]
    assert verification_code(spec, fixture, raw(body, headers), wrong) == "bad_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_source_without_secret_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    assert verification_code(spec, fixture, raw(body, headers), None) == "bad_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_missing_signature_header_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    name = sig_spec(spec, fixture).header.lower()
    stripped = {k: v for k, v in headers.items() if k.lower() != name}
    assert len(stripped) == len(headers) - 1, f"the signer did not set {name}"
    assert verification_code(spec, fixture, raw(body, stripped), SIGNERS[spec.id][1]) == "missing_signature"


def _signed_headers(spec: ConnectorSpec) -> list[str]:
    """Headers other than the signature that the scheme depends on (timestamp, message id)."""
    names = {m.lower() for m in re.findall(r"\{header:([A-Za-z0-9_-]+)\}", spec.signature.signed)}
    if spec.signature.timestamp_header:
        names.add(spec.signature.timestamp_header.lower())
    return sorted(names)


SIGNED_HEADER_CASES = [
    pytest.param(spec, path, name, id=f"{spec.id}/{path.stem}/{name}")
    for spec in SPECS
    for path in fixture_files(spec.id)
    for name in _signed_headers(spec)
]


@pytest.mark.parametrize(("spec", "path", "name"), SIGNED_HEADER_CASES)
def test_missing_signed_header_is_rejected(spec: ConnectorSpec, path: Path, name: str) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    stripped = {k: v for k, v in headers.items() if k.lower() != name}
    assert len(stripped) == len(headers) - 1
    req = raw(body, stripped)
    with pytest.raises(VerificationError) as info:
        verify(sig_spec(spec, fixture), SIGNERS[spec.id][1], req, now_for(spec, headers))
    assert info.value.code == "missing_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_parse_gives_type_dedup_key_and_subject(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    event = parse(spec, raw(body, headers))
    expect = fixture["expect"]
    assert event.payload == fixture["payload"]
    assert event.type == expect["type"]
    assert event.dedup_key == expect["dedup_key"]
    assert event.subject == expect["subject"]


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_event_type_is_declared_and_handshakes_are_ignored(spec: ConnectorSpec, path: Path) -> None:
    expect = load(path)["expect"]
    assert expect["type"] in spec.events or "*" in spec.events
    assert (expect["type"] in spec.handshake.ignore_types) is bool(expect.get("ignored", False))


FORM_CASES = fixture_cases([s for s in SPECS if s.form_field])


@pytest.mark.parametrize(("spec", "path"), FORM_CASES)
def test_form_encoded_delivery_verifies_and_parses(spec: ConnectorSpec, path: Path) -> None:
    """GitHub hooks set to application/x-www-form-urlencoded send ``payload=<json>``, signed as sent."""
    fixture = load(path)
    assert spec.form_field
    form = urlencode({spec.form_field: body_of(fixture).decode()}).encode()
    headers = {k: v for k, v in fixture["headers"].items() if k.lower() != "content-type"}
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    body, headers = signed(spec, {**fixture, "headers": headers}, body=form)
    req = raw(body, headers)
    verify(sig_spec(spec, fixture), SIGNERS[spec.id][1], req, now_for(spec, headers))
    event = parse(spec, req)
    assert event.payload == fixture["payload"]
    assert (event.type, event.subject) == (fixture["expect"]["type"], fixture["expect"]["subject"])


# --- Standard Webhooks: cross-check with the reference library -------------------------------------------

SW_CASES = fixture_cases([s for s in SPECS if s.id == "standard-webhooks"])


@pytest.mark.parametrize(("spec", "path"), SW_CASES)
def test_standard_webhooks_signer_matches_reference_library(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    body, headers = signed(spec, fixture)
    secret = SIGNERS[spec.id][1]
    ts = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    library = Webhook(secret).sign(headers["webhook-id"], ts, body.decode())
    assert headers["webhook-signature"] == library
    # hub accepts what the library signs, listed with a signature from a rotated-out key
    both = {**headers, "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} {library}"}
    verify(spec.signature, secret, raw(body, both), now_for(spec, headers))


@pytest.mark.parametrize(("spec", "path"), SW_CASES)
def test_reference_library_accepts_what_hub_accepts(spec: ConnectorSpec, path: Path) -> None:
    """Re-stamped with the current time, since the library reads the wall clock."""
    fixture = load(path)
    now = int(time.time())
    fixture["headers"] = {**fixture["headers"], "webhook-timestamp": str(now)}
    body, headers = signed(spec, fixture)
    secret = SIGNERS[spec.id][1]
    verify(spec.signature, secret, raw(body, headers), float(now))
    assert Webhook(secret).verify(body, headers) == fixture["payload"]
