"""The OpenAPI document IT works from: every operation, parameter and tag described; one example per
target kind and per connector, each accepted by the API; error examples whose code matches their status;
POST /hooks with the headers connectors read; 422 rules declared. And the behaviours it promises: OPTIONS
and 405 tell a path's methods, booleans and numbers are strict, a key cannot revoke itself."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hub.api.openapi_docs import RULES, source_example
from hub.cli import openapi_document
from hub.connectors.catalogue import builtin_catalogue
from hub.targets.registry import TARGETS
from tests.conftest import create

DOC: dict[str, Any] = json.loads(openapi_document())
OPERATIONS = [(path, method, op) for path, ops in DOC["paths"].items() for method, op in ops.items()]


def test_every_operation_parameter_and_tag_is_described() -> None:
    assert len(OPERATIONS) > 60
    undescribed = [f"{m} {p}" for p, m, op in OPERATIONS if len(op.get("description", "")) < 15]
    assert undescribed == []
    params = [
        f"{m} {p} {prm['name']}"
        for p, m, op in OPERATIONS
        for prm in op.get("parameters", [])
        if not prm["description"]
    ]
    assert params == []
    described = {t["name"] for t in DOC["tags"] if len(t["description"]) > 30}
    used = {tag for _, _, op in OPERATIONS for tag in op.get("tags", [])}
    assert used <= described


def _examples(path: str) -> dict[str, Any]:
    examples: dict[str, Any] = DOC["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]
    return examples


def test_one_request_example_per_target_kind_and_per_connector() -> None:
    assert set(_examples("/api/v1/targets")) == set(TARGETS)
    assert set(_examples("/api/v1/sources")) == {spec.id for spec in builtin_catalogue().all()}
    pipedrive = _examples("/api/v1/sources")["pipedrive"]["value"]
    assert pipedrive["settings"] == {"username": "hub"} and pipedrive["secret"]  # from its settings schema
    assert "secret" not in _examples("/api/v1/sources")["asana"]["value"]  # Asana's handshake teaches it


async def test_every_example_is_accepted_by_the_api(client: httpx.AsyncClient) -> None:
    for name, example in _examples("/api/v1/sources").items():
        resp = await client.post("/api/v1/sources", json=example["value"])
        assert resp.status_code == 201, (name, resp.text)
    for name, example in _examples("/api/v1/targets").items():
        resp = await client.post("/api/v1/targets", json=example["value"])
        assert resp.status_code == 201, (name, resp.text)


def test_source_example_of_a_standard_webhooks_connector_is_a_whsec_secret() -> None:
    spec = builtin_catalogue().get("standard-webhooks")
    assert spec is not None and source_example(spec)["secret"].startswith("whsec_")


def _example_codes(answer: dict[str, Any]) -> set[str]:
    media = answer["content"]["application/json"]
    values = [e["value"] for e in media.get("examples", {}).values()] + [media.get("example")]
    return {v["error"]["code"] for v in values if v}


@pytest.mark.parametrize(
    ("status", "expected"),
    [("400", {"malformed_body"}), ("401", {"unauthorized"}), ("403", {"forbidden"})],
)
def test_error_examples_match_their_status(status: str, expected: set[str]) -> None:
    found = [
        (p, m, _example_codes(op["responses"][status]))
        for p, m, op in OPERATIONS
        if status in op["responses"] and p.startswith("/api/")
    ]
    assert found and all(codes == expected for _, _, codes in found), found


def test_not_found_and_conflict_examples_name_their_object() -> None:
    responses = DOC["paths"]["/api/v1/sources/{source_id}"]["get"]["responses"]
    assert _example_codes(responses["404"]) == {"source_not_found"}
    retry = DOC["paths"]["/api/v1/deliveries/{delivery_id}/retry"]["post"]["responses"]
    assert _example_codes(retry["404"]) == {"delivery_not_found"} and _example_codes(retry["409"]) == {
        "delivery_not_retryable"
    }
    code = DOC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert "example" not in code  # no one example for every status


def test_business_rules_behind_422_are_declared() -> None:
    sources = DOC["paths"]["/api/v1/sources"]["post"]["responses"]["422"]
    assert "needs a secret" in sources["description"]
    assert {"invalid_config", "invalid_text", "invalid_request"} == _example_codes(sources)
    routes = DOC["paths"]["/api/v1/routes"]["post"]["responses"]["422"]
    assert "no source" in routes["description"]
    for (method, path), rules in RULES.items():
        assert rules and "422" in DOC["paths"][path][method]["responses"], (method, path)


def test_hooks_document_headers_body_and_answers() -> None:
    post = DOC["paths"]["/hooks/{source_id}"]["post"]
    headers = {p["name"].lower(): p["description"] for p in post["parameters"] if p["in"] == "header"}
    assert "github" in headers["x-hub-signature-256"] and "github" in headers["x-github-event"]
    assert "stripe" in headers["stripe-signature"]
    assert set(post["requestBody"]["content"]) >= {"application/json", "application/x-www-form-urlencoded"}
    assert {"200", "202", "401", "404", "413"} <= set(post["responses"])
    assert _example_codes(post["responses"]["404"]) == {"unknown_source"}
    no_handshake = DOC["paths"]["/hooks/{source_id}"]["get"]["responses"]["405"]
    assert _example_codes(no_handshake) == {"method_not_allowed"}


def test_links_lead_from_a_created_object_to_its_operations() -> None:
    links = DOC["paths"]["/api/v1/sources"]["post"]["responses"]["201"]["links"]
    assert links["GetSource"]["parameters"] == {"source_id": "$response.body#/id"}
    for link in links.values():
        _, path, method = link["operationRef"].rsplit("/", 2)
        assert method in DOC["paths"][path.replace("~1", "/")], link


async def test_options_and_405_tell_the_methods_of_the_path(client: httpx.AsyncClient) -> None:
    opts = await client.options("/api/v1/sources", headers={"Authorization": ""})
    assert (opts.status_code, opts.headers["allow"]) == (204, "GET, POST, OPTIONS")
    # the most specific template decides: /people/export is not /people/{person_id}
    assert (await client.options("/api/v1/people/export")).headers["allow"] == "GET, OPTIONS"
    wrong = await client.patch("/api/v1/people/export", json={})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, OPTIONS"
    assert (await client.get("/api/v1/deliveries/bulk-retry")).headers["allow"] == "POST, OPTIONS"
    assert (await client.options("/api/v1/mappings/x/copy")).headers["allow"] == "POST, OPTIONS"
    assert (await client.options("/nowhere")).status_code == 404
    for path, ops in DOC["paths"].items():  # every documented path, as OPTIONS tells it
        concrete = path.replace("{name}", "x").replace("{", "").replace("}", "")
        allow = (await client.options(concrete)).headers["allow"].split(", ")
        assert {m.upper() for m in ops} <= set(allow) <= {m.upper() for m in ops} | {"HEAD", "OPTIONS"}, path


async def test_booleans_numbers_and_times_are_strict(client: httpx.AsyncClient) -> None:
    for enabled in (0, 1, "false", "yes"):
        resp = await client.post("/api/v1/targets", json={"kind": "inbox", "name": "b", "enabled": enabled})
        assert resp.status_code == 422, enabled
    bad_schedule = {"kind": "inbox", "name": "b", "retry_schedule": [False]}
    assert (await client.post("/api/v1/targets", json=bad_schedule)).status_code == 422
    assert (await client.get("/api/v1/audit", params={"until": "0.5"})).status_code == 422
    assert (await client.post("/api/v1/deliveries/bulk-retry", json={"since": 0})).status_code == 422
    ok = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "b", "enabled": False})
    assert ok["enabled"] is False
    assert (await client.get("/api/v1/audit", params={"until": "2026-01-01T00:00:00Z"})).status_code == 200


async def test_a_key_cannot_revoke_itself(client: httpx.AsyncClient) -> None:
    keys = (await client.get("/api/v1/keys")).json()
    own = next(k for k in keys if k["name"] == "bootstrap admin")
    refused = await client.delete(f"/api/v1/keys/{own['id']}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "key_in_use")
    other = await create(client, "/api/v1/keys", {"name": "second", "scope": "admin"})
    second = {"Authorization": f"Bearer {other['key']}"}
    assert (await client.delete(f"/api/v1/keys/{own['id']}", headers=second)).status_code == 204
