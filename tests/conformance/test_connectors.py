"""Conformance of every connector in connectors/: the same properties, run on every recorded delivery.

Fixtures are real payloads from each provider's documentation; each is signed here by a signer written
from that documentation (tests/conformance/signers/), then received by hub the way ingest receives it
(handshake, verify, split). Every default mapping renders every fixture's events and is compared with a
committed expected post (tests/expected/<connector>/<fixture>.json; HUB_UPDATE_EXPECTED=1 rewrites them).
A connector without fixtures, a signer or mappings fails the suite and says what to add.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.connectors.catalogue import ConnectorCatalogue, SpecError, load_spec_file
from hub.connectors.connector import hooks_for
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import VerificationError
from hub.mapping.catalogue import builtin_mappings
from hub.mapping.samples import Sample, entry, render_default
from hub.paths import builtin_dir
from tests.conformance.kit import (
    CATALOGUE,
    EXPECTED,
    NOW,
    SIGNERS,
    SPECS,
    Req,
    body_of,
    expected_events,
    fixture_files,
    load,
    receive,
    settings_for,
    signed,
    verify,
)
from tests.conftest import create, wait_for

SPEC_IDS = [s.id for s in SPECS]
MAPPINGS = builtin_mappings()
UPDATE = os.environ.get("HUB_UPDATE_EXPECTED") == "1"


def cases(specs: list[ConnectorSpec]) -> list[Any]:
    return [pytest.param(s, path, id=f"{s.id}/{path.stem}") for s in specs for path in fixture_files(s.id)]


FIXTURE_CASES = cases(SPECS)


def signer(spec: ConnectorSpec) -> Any:
    return SIGNERS[spec.id]


def proof_headers(spec: ConnectorSpec, settings: dict[str, Any]) -> list[str]:
    found = signer(spec).PROOF_HEADERS
    return list(found(settings) if callable(found) else found)


def code_of(spec: ConnectorSpec, req: Req, secret: str | None, settings: dict[str, Any], now: float = NOW) -> str:
    with pytest.raises(VerificationError) as info:
        verify(spec, req, secret, settings, now)
    return info.value.code


# --- the catalogue -----------------------------------------------------------------------------------------


def test_catalogue_holds_every_connector_file() -> None:
    files = sorted(p.stem for p in builtin_dir("connectors").glob("*.yaml"))
    assert files, "no connector specs found"
    assert files == SPEC_IDS


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_id_equals_file_name(spec: ConnectorSpec) -> None:
    path = builtin_dir("connectors") / f"{spec.id}.yaml"
    assert load_spec_file(path).id == path.stem == spec.id


def test_a_spec_whose_id_differs_from_its_file_name_is_rejected(tmp_path: Path) -> None:
    text = (builtin_dir("connectors") / "github.yaml").read_text()
    (tmp_path / "not-github.yaml").write_text(text)
    with pytest.raises(SpecError, match="must equal the file name"):
        ConnectorCatalogue.from_dirs(tmp_path)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_is_described_declares_events_and_loads_its_hooks(spec: ConnectorSpec) -> None:
    assert spec.title.strip()
    assert spec.events, f"{spec.id} declares no events"
    assert all(isinstance(v, str) and v.strip() for v in spec.events.values())
    hooks_for(spec)  # a hooks module that does not load fails here, not at the first webhook


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_has_fixtures_and_a_documented_signer(spec: ConnectorSpec) -> None:
    assert fixture_files(spec.id), f"connector {spec.id}: add recorded deliveries under tests/fixtures/{spec.id}/"
    assert spec.id in SIGNERS, f"connector {spec.id}: add tests/conformance/signers/ written from its docs"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_declared_event_has_a_fixture(spec: ConnectorSpec) -> None:
    declared = {e for e in spec.events if "*" not in e}
    covered = {ev["type"] for p in fixture_files(spec.id) for ev in expected_events(load(p))}
    assert declared <= covered, f"events without a fixture: {sorted(declared - covered)}"


@pytest.mark.parametrize("spec", [s for s in SPECS if "*" not in s.events], ids=lambda s: s.id)
def test_every_routable_declared_event_has_a_default_mapping_of_its_own(spec: ConnectorSpec) -> None:
    ignored = set(spec.handshake.ignore_types)
    for event in (e for e in spec.events if e not in ignored):
        chosen = MAPPINGS.default_for(spec.id, event)
        assert chosen is not None and chosen is not MAPPINGS.get("_default"), f"{spec.id}: no mapping for {event}"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_views_are_for_declared_events(spec: ConnectorSpec) -> None:
    for pattern in spec.views:
        assert any(fnmatch.fnmatchcase(e, pattern) for e in spec.events), f"view {pattern!r} matches no event"


# --- every fixture -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_fixture_is_well_formed(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    assert set(fixture) <= {"headers", "payload", "body", "method", "query", "expect", "settings"}
    assert isinstance(fixture["headers"], dict)
    assert ("payload" in fixture) != ("body" in fixture), "a fixture has a payload or a raw body"
    for ev in expected_events(fixture):
        assert set(ev) >= {"type", "dedup_key", "subject"}, ev


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_signed_fixture_gives_the_expected_events(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    settings = settings_for(spec.id, fixture)
    events = receive(spec, signed(spec, fixture), signer(spec).SECRET, settings)
    expected = expected_events(fixture)
    got = [
        {
            "type": e.type,
            "dedup_key": e.dedup_key,
            "subject": e.subject,
            **({"ignored": True} if e.ignored else {}),
            **({"payload": e.payload} if "payload" in ev else {}),
        }
        for e, ev in zip(events, expected, strict=False)
    ]
    assert got == [{k: v for k, v in ev.items() if k != "ignored" or v} for ev in expected]
    assert len(events) == len(expected)
    if len(events) == 1 and "payload" in fixture and "payload" not in expected[0]:
        assert events[0].payload == fixture["payload"]
    for e in events:
        assert e.type in spec.events or any(fnmatch.fnmatchcase(e.type, p) for p in spec.events)


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_tampered_body_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    if not signer(spec).BODY_SIGNED:
        pytest.skip(f"{spec.id}'s proof does not cover the body (a token or credentials)")
    fixture = load(path)
    settings = settings_for(spec.id, fixture)
    req = signed(spec, fixture)
    secret = signer(spec).SECRET
    tampered = req.body.replace(b'"', b"'", 1) if b'"' in req.body else req.body + b"x"
    assert tampered != req.body
    assert code_of(spec, Req(tampered, req.headers, req.method, req.url), secret, settings) == "bad_signature"
    assert code_of(spec, Req(req.body + b" ", req.headers, req.method, req.url), secret, settings) == "bad_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_wrong_secret_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    settings = settings_for(spec.id, fixture)
    req = signed(spec, fixture)
    assert code_of(spec, req, signer(spec).WRONG_SECRET, settings) == "bad_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_source_without_secret_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    if not spec.secret_required:
        pytest.skip(f"{spec.id} sources may have no secret")
    fixture = load(path)
    assert code_of(spec, signed(spec, fixture), None, settings_for(spec.id, fixture)) == "bad_signature"


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_missing_proof_header_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    fixture = load(path)
    settings = settings_for(spec.id, fixture)
    names = proof_headers(spec, settings)
    if not names:
        pytest.skip(f"{spec.id}'s proof is not in a header")
    req = signed(spec, fixture)
    for name in names:
        stripped = req.without(name)
        assert len(stripped.headers) == len(req.headers) - 1, f"the signer did not set {name}"
        assert code_of(spec, stripped, signer(spec).SECRET, settings) == "missing_signature", name


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_stale_request_is_rejected(spec: ConnectorSpec, path: Path) -> None:
    if not signer(spec).TIMESTAMPED:
        pytest.skip(f"{spec.id} signs no timestamp")
    fixture = load(path)
    settings = settings_for(spec.id, fixture)
    req = signed(spec, fixture, now=NOW - 3600)
    assert code_of(spec, req, signer(spec).SECRET, settings, now=NOW) == "stale_timestamp"


# --- every default mapping on every fixture ----------------------------------------------------------------


def sample_entries(spec: ConnectorSpec, fixture: dict[str, Any]) -> list[Any]:
    """Each event of a fixture as the connector really splits it, with its post through the default mapping."""
    events = receive(spec, signed(spec, fixture), signer(spec).SECRET, settings_for(spec.id, fixture))
    out: list[Any] = []
    for i, ev in enumerate(events):
        sample = Sample(spec.id, "", i, ev.type, ev.subject, ev.payload, ev.ignored, None)
        out.append(entry(ev.type, ev.subject, ev.payload, ev.ignored, render_default(MAPPINGS, CATALOGUE, sample)))
    return out


def rendered_posts(spec: ConnectorSpec, fixture: dict[str, Any]) -> list[Any]:
    return [item["post"] for item in sample_entries(spec, fixture)]


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_default_mappings_render_the_committed_expected_posts(spec: ConnectorSpec, path: Path) -> None:
    """The committed sample events are what the connector gives, and their posts what the mappings give."""
    expected_file = EXPECTED / spec.id / path.name
    entries = sample_entries(spec, load(path))
    if UPDATE:
        expected_file.parent.mkdir(parents=True, exist_ok=True)
        expected_file.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    assert expected_file.is_file(), f"run HUB_UPDATE_EXPECTED=1 pytest {__file__} and review {expected_file}"
    assert entries == json.loads(expected_file.read_text())


@pytest.mark.parametrize(("spec", "path"), FIXTURE_CASES)
def test_posts_of_one_business_object_share_a_thread(spec: ConnectorSpec, path: Path) -> None:
    """``subject`` names the business object: every post of an event with a subject is in its thread."""
    fixture = load(path)
    for ev, post in zip(expected_events(fixture), rendered_posts(spec, fixture), strict=True):
        if post is not None and ev["subject"]:
            assert post["thread_key"], f"{path.name}: a post about {ev['subject']} has no thread"


# --- end to end, through the app ---------------------------------------------------------------------------


def first_routable(spec: ConnectorSpec) -> Path | None:
    for path in fixture_files(spec.id):
        fixture = load(path)
        if any(not ev.get("ignored") for ev in expected_events(fixture)) and fixture.get("method", "POST") == "POST":
            return path
    return None


E2E = [pytest.param(s, p, id=s.id) for s in SPECS if (p := first_routable(s)) is not None]


@pytest.mark.parametrize(("spec", "path"), E2E)
async def test_a_delivery_is_stored_routed_and_a_repeat_is_not_delivered_twice(
    spec: ConnectorSpec, path: Path, client: httpx.AsyncClient
) -> None:
    fixture = load(path)
    mod = signer(spec)
    src = await create(
        client,
        "/api/v1/sources",
        {"connector": spec.id, "name": "conformance", "secret": mod.SECRET, "settings": settings_for(spec.id, fixture)},
    )
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "inbox"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["*"]})
    query = fixture.get("query", "")
    unsigned = Req(
        body_of(fixture), dict(fixture["headers"]), "POST", src["ingest_url"] + (f"?{query}" if query else "")
    )
    req = mod.sign(unsigned, mod.SECRET, settings_for(spec.id, fixture), time.time())
    resp = await client.post(req.url, content=req.body, headers=req.headers)
    assert 200 <= resp.status_code < 300, resp.text
    expected = [ev for ev in expected_events(fixture) if not ev.get("ignored")]

    async def events_stored() -> bool:
        listed = await client.get("/api/v1/events", params={"source_id": src["id"]})
        return len(listed.json()) >= len(expected_events(fixture))

    await wait_for(events_stored)
    posts = [p for p in rendered_posts(spec, fixture) if p is not None]

    async def delivered() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) >= len(posts)

    await wait_for(delivered)
    if all(ev["dedup_key"] for ev in expected):
        again = await client.post(req.url, content=req.body, headers=req.headers)
        assert 200 <= again.status_code < 300, again.text
        listed = await client.get("/api/v1/events", params={"source_id": src["id"]})
        assert len(listed.json()) == len(expected_events(fixture)), "a repeat was stored again"
        assert len((await client.get("/api/v1/inbox")).json()) == len(posts), "a repeat was delivered again"
