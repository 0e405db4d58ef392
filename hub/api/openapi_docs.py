"""What the OpenAPI document says beyond what FastAPI derives: tag descriptions, a description for every
operation and parameter, one request example per target kind and per connector, ``POST /hooks/{id}``
with the headers the connectors read and its answers, the business rules behind each 422, error examples
whose code matches their status, and links between operations (an id a response gives, another takes).

Descriptions written on a handler (its docstring) or a parameter (``Query(description=…)``) win; the
texts here fill what they leave empty, so handler modules stay small.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.spec import ConnectorSpec
from hub.targets.registry import TARGETS

TAGS: list[dict[str, str]] = [
    {
        "name": "ingest",
        "description": "Where providers send webhooks: `POST /hooks/{source_id}` (the source's "
        "`ingest_url`), verified, stored, then delivered. Handshakes that come by GET or HEAD are answered too.",
    },
    {
        "name": "sources",
        "description": "One source per provider account that sends webhooks: its connector, its "
        "secret (write-only, encrypted at rest) and settings. Its `ingest_url` is what you paste at the provider.",
    },
    {
        "name": "targets",
        "description": "Where posts go: one per channel of an enterprise social network (or a "
        "webhook, or the built-in inbox). Secret settings are write-only; a breaker guards each target.",
    },
    {
        "name": "routes",
        "description": "Which events of a source go to which target, through which mapping; a dry "
        "run shows what a candidate mapping would change on the route's last stored events.",
    },
    {
        "name": "events",
        "description": "Every webhook received, as stored: payload, headers, its deliveries and "
        "their attempts. Replay sends an event again through the routes that match it now.",
    },
    {
        "name": "deliveries",
        "description": "One delivery per (event, route): its status, attempts, the post the "
        "target created (`remote_id`, `remote_url`) and the mapping version that rendered it.",
    },
    {
        "name": "operations",
        "description": "Running hub: dead letters and their bulk retry (a tracked job), "
        "circuit breakers, and the counts the console's overview charts.",
    },
    {
        "name": "preview",
        "description": "Render a payload through a mapping and a target kind without delivering "
        "anything: the post and the exact request.",
    },
    {
        "name": "mappings",
        "description": "Declarative templates from events to posts: built-in ones (files, "
        "read-only) and managed ones (versioned, checked against the connector's samples).",
    },
    {
        "name": "people",
        "description": "A directory of people and their identities across tools, so posts can "
        "name and mention the same person whatever tool the event came from.",
    },
    {
        "name": "storage",
        "description": "File storage sources that notify only that something changed (Dropbox, Microsoft "
        "Graph, Google Drive): their OAuth2 credentials, the fetch of what changed and the provider "
        "subscription hub keeps alive.",
    },
    {
        "name": "catalogue",
        "description": "The connectors hub understands (built in, or registered over REST as "
        "a spec) and the built-in inbox target's posts.",
    },
    {"name": "keys", "description": "API keys (admin or read). A key is shown once, when it is created."},
    {
        "name": "audit",
        "description": "Who changed what, when: every change and manual operation, never a secret value.",
    },
    {
        "name": "auth",
        "description": "Single sign-on for the console (OpenID Connect): sign-in, callback, "
        "sign-out, and who the current credentials belong to.",
    },
    {
        "name": "health",
        "description": "Liveness, readiness and Prometheus metrics, for orchestrators and monitoring (no credentials).",
    },
    {"name": "admin", "description": "The console, a web page for operators."},
]

OPERATIONS: dict[tuple[str, str], str] = {
    ("get", "/hooks/{source_id}"): "Answers the handshakes some providers make before sending: Dropbox's "
    "`challenge`, Microsoft Graph's `validationToken`, Trello's HEAD. A source whose connector has none "
    "answers 405.",
    ("get", "/api/v1/sources"): "Every source, with its webhook URL (`ingest_url`); secrets are never "
    "returned, only whether one is set.",
    ("post", "/api/v1/sources"): "Registers a provider account. `connector` is an id from "
    "`GET /api/v1/connectors`; most connectors need the `secret` the provider signs with (422 without it). "
    "Paste the answer's `ingest_url` at the provider.",
    ("get", "/api/v1/sources/{source_id}"): "One source, as listed: secrets never returned.",
    ("patch", "/api/v1/sources/{source_id}"): "Changes the fields given. A new `secret` rotates: the previous "
    "one is still accepted for `previous_secret_valid_for` seconds. `enabled: false` makes its webhooks 404.",
    ("delete", "/api/v1/sources/{source_id}"): "Deletes the source and its routes; its stored events stay "
    "until retention removes them.",
    ("get", "/api/v1/targets"): "Every target, with its breaker state; secret settings are listed by name "
    "(`secrets_set`), never returned, and a secret URL shows only its host.",
    ("post", "/api/v1/targets"): "`kind` picks the settings (see the schema of each kind, and the examples: "
    "one per kind). A URL must pass the egress policy; secret settings are encrypted at rest.",
    ("get", "/api/v1/targets/{target_id}"): "One target, as listed: secret settings named, never returned.",
    ("patch", "/api/v1/targets/{target_id}"): "Common fields and any of the kind's settings; nested settings "
    "are merged key by key and `null` removes an optional one. Another channel starts its threads anew.",
    ("delete", "/api/v1/targets/{target_id}"): "Deletes the target, its routes and its thread anchors.",
    ("post", "/api/v1/routes"): "Sends a source's events of the given types to a target. The source and "
    "target must exist and each event pattern must match a type the connector sends (else 422).",
    ("get", "/api/v1/routes"): "Every route, or a source's.",
    ("get", "/api/v1/routes/{route_id}"): "One route: its source, target, event patterns and mapping.",
    ("patch", "/api/v1/routes/{route_id}"): "Changes its events, mapping or state; checked as on creation.",
    ("delete", "/api/v1/routes/{route_id}"): "Deletes the route; deliveries already made stay.",
    ("get", "/api/v1/events/{event_id}"): "The event as stored (payload, headers), its deliveries and every "
    "attempt of each, with the answer each attempt got (secrets scrubbed) and the post made.",
    ("post", "/api/v1/events/{event_id}/replay"): "Creates new deliveries through the routes that match the "
    "event now (409 when none does), with new idempotency keys.",
    ("get", "/api/v1/deliveries"): "Newest first; page with `before`.",
    ("get", "/api/v1/deliveries/{delivery_id}"): "One delivery with its attempts.",
    ("post", "/api/v1/deliveries/{delivery_id}/retry"): "Makes a dead, failed or skipped delivery due now with "
    "a fresh retry schedule. 409 when it is delivered or being sent, or its route is gone.",
    ("get", "/api/v1/dead-letters"): "Dead (retries exhausted, or refused) and failed (the mapping failed) "
    "deliveries, newest first, filtered as a bulk retry would be.",
    ("post", "/api/v1/deliveries/bulk-retry"): "Queues a job that makes every dead letter matching the filter "
    "due again; follow it at `GET /api/v1/jobs/{id}` (`done` of `total`).",
    ("get", "/api/v1/jobs"): "Bulk retries and other background jobs, newest first.",
    ("get", "/api/v1/jobs/{job_id}"): "A job's status and progress (`done` of `total`).",
    ("get", "/api/v1/targets/{target_id}/breaker"): "Closed (sending), open (paused after repeated failures, "
    "until `retry_at`), half open (one trial send) or disabled (the target's URL is gone: `reason`).",
    ("post", "/api/v1/targets/{target_id}/breaker/reset"): "Closes the breaker, re-enabling a disabled "
    "target, and makes its waiting deliveries due now.",
    ("post", "/api/v1/preview"): "Nothing is sent. The target kind's example settings fill what "
    "`target_settings` leaves out. An inline mapping needs an admin key (templates are code).",
    ("get", "/api/v1/mappings"): "Built-in and managed mappings, with the event types each is for.",
    ("post", "/api/v1/mappings"): "A managed mapping, version 1. With a `connector`, it is rendered against "
    "the connector's sample payloads first: a template that fails is a 422.",
    ("get", "/api/v1/mappings/{name}/versions"): "Every version of a managed mapping, newest first.",
    ("get", "/api/v1/mappings/{name}"): "A mapping with its templates.",
    ("put", "/api/v1/mappings/{name}"): "A new version of a managed mapping; routes that name it use it at "
    "once. Built-in mappings are read-only (409): copy one.",
    ("delete", "/api/v1/mappings/{name}"): "Deletes a managed mapping; 409 while a route names it.",
    ("post", "/api/v1/mappings/{name}/copy"): "Copies a mapping (a built-in one, typically) under a new name, "
    "as a managed mapping you can change.",
    ("post", "/api/v1/people"): "A person and their identities (kind → id at that tool); an identity belongs "
    "to one person (409 otherwise).",
    ("get", "/api/v1/people"): "The directory, by name; `identity` finds the person holding one.",
    ("get", "/api/v1/people/export"): "The directory as CSV, one column per identity kind.",
    ("get", "/api/v1/people/{person_id}"): "One person and their identities.",
    ("patch", "/api/v1/people/{person_id}"): "Renames, or sets identities (`null` removes one).",
    ("delete", "/api/v1/people/{person_id}"): "Deletes a person and their identities.",
    ("get", "/api/v1/connectors"): "Built-in and custom connectors: event types, settings schema.",
    ("post", "/api/v1/connectors"): "Registers a custom connector from a spec (the format of "
    "connectors/*.yaml): how to verify, type, deduplicate and read its webhooks.",
    ("get", "/api/v1/connectors/{connector_id}"): "One connector: its event types and settings schema.",
    ("delete", "/api/v1/connectors/{connector_id}"): "Deletes a custom connector; 409 while a source uses it.",
    ("get", "/api/v1/inbox"): "Posts delivered to `inbox` targets, newest first: try hub without an RSE.",
    ("get", "/api/v1/keys"): "Every API key (never the key itself).",
    ("post", "/api/v1/keys"): "A new key; the answer holds it, once. Store it now.",
    ("delete", "/api/v1/keys/{key_id}"): "Revokes a key at once.",
    ("get", "/auth/login"): "Starts single sign-on: redirects to the identity provider (PKCE); 404 when "
    "single sign-on is not configured.",
    ("get", "/auth/callback"): "Where the identity provider sends the browser back: sets the console's "
    "session cookie and redirects to the console.",
    ("post", "/auth/logout"): "Clears the console's session cookie.",
    ("get", "/auth/me"): "The key's name and scope, or the signed-in user's e-mail and scope.",
    ("get", "/healthz"): "200 while the process answers.",
    ("get", "/readyz"): "200 when the database (and Redis, scaled) answer, else 503 naming what does not.",
    ("get", "/metrics"): "Prometheus metrics: events received and rejected, deliveries by status, attempt "
    "latency, queue depth, breaker states.",
}

# (location, name) → description, for the parameters a handler leaves undescribed
PARAMETERS: dict[tuple[str, str], str] = {
    ("path", "source_id"): "A source's id (`src_…`).",
    ("path", "target_id"): "A target's id (`tgt_…`).",
    ("path", "route_id"): "A route's id (`rte_…`).",
    ("path", "event_id"): "An event's id (`evt_…`).",
    ("path", "delivery_id"): "A delivery's id (`dlv_…`), also its idempotency key.",
    ("path", "job_id"): "A job's id (`job_…`), from the bulk retry that made it.",
    ("path", "key_id"): "An API key's id (`key_…`), as listed; not the key itself.",
    ("path", "person_id"): "A person's id (`per_…`).",
    ("path", "connector_id"): "A connector's id, e.g. `github`.",
    ("path", "name"): "A mapping's name: a managed one's, or a built-in `<connector>/<file>`.",
    ("query", "source_id"): "Only those of this source.",
    ("query", "target_id"): "Only those to this target.",
    ("query", "event_id"): "Only this event's.",
    ("query", "status"): "Only those in this status.",
    ("query", "before"): "An id: only older ones (pagination: the last id of the previous page).",
    ("query", "limit"): "At most this many.",
    ("query", "offset"): "Skip this many (pagination).",
    ("query", "since"): "Created at or after (ISO 8601; UTC without a zone).",
    ("query", "until"): "Created before (ISO 8601; UTC without a zone).",
    ("query", "error_contains"): "A substring of the last error, in any case.",
    ("query", "connector"): "Only those for this connector.",
    ("query", "action"): "Only this action, e.g. `update`, `retry`.",
}

_NUL = ("invalid_text", "the body holds a NUL character or an invalid (lone surrogate) character")
_SCHEMA = ("invalid_request", "the request does not validate")
_GUARDED_OUTSIDE_API = {"/oauth/callback"}  # hub/storage/api.py: on TextGuardRoute too (hub/api/text_guard.py)
_STORAGE_SETTINGS = ("invalid_config", "set settings.oauth_client_id (the OAuth app's client id) first")
# (method, path) → the business rules that answer 422, beyond the schema (code, example message)
RULES: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("post", "/api/v1/sources"): [
        ("invalid_config", "connector github needs a secret"),
        ("invalid_config", "unknown connector 'gihtub'"),
        ("invalid_config", "connector pipedrive needs the setting 'username'"),
        ("invalid_config", "the secret must be base64 (whsec_… for Standard Webhooks)"),
    ],
    ("patch", "/api/v1/sources/{source_id}"): [
        ("invalid_config", "connector github needs a secret"),
        ("invalid_config", "connector pipedrive needs the setting 'username'"),
    ],
    ("post", "/api/v1/targets"): [
        ("invalid_config", "invalid talkspirit settings: url: Input should be a valid URL"),
        ("invalid_config", "unknown target kind; one of ['discord', …]"),
        ("invalid_config", "https://10.0.0.5/hook: not globally routable (HUB_BLOCK_PRIVATE_TARGETS)"),
    ],
    ("patch", "/api/v1/targets/{target_id}"): [
        (
            "invalid_config",
            "invalid webhook settings: secret: a Standard Webhooks secret is whsec_ and 24 to 64 bytes in base64",
        ),
        ("invalid_config", "name cannot be null"),
    ],
    ("post", "/api/v1/routes"): [
        ("invalid_config", "no source 'src_…'"),
        ("invalid_config", "no target 'tgt_…'"),
        ("invalid_config", "connector github sends no event matching 'issue.opened'; known: …"),
        ("invalid_config", "no mapping named 'nope'; known: …"),
    ],
    ("patch", "/api/v1/routes/{route_id}"): [
        ("invalid_config", "connector github sends no event matching 'issue.opened'; known: …"),
        ("invalid_config", "events cannot be null"),
    ],
    ("post", "/api/v1/preview"): [
        ("invalid_config", "unknown connector 'gihtub'"),
        ("invalid_config", "unknown target kind 'x'; one of [...]"),
        ("mapping_failed", "no default mapping for github event push"),
    ],
    ("post", "/api/v1/routes/{route_id}/dry-run"): [("invalid_config", "no mapping named 'nope'; known: …")],
    ("post", "/api/v1/mappings"): [("invalid_config", "invalid mapping: post: Field required")],
    ("put", "/api/v1/mappings/{name}"): [("invalid_config", "invalid mapping: post: Field required")],
    ("post", "/api/v1/connectors"): [("invalid_config", "invalid connector spec: id: Field required")],
    ("post", "/api/v1/people"): [("invalid_request", "unknown identity kind(s) ['myspace']")],
    ("post", "/api/v1/people/import"): [("invalid_config", "unknown column(s) 'phone'; known: id, display_name, …")],
    ("get", "/api/v1/people"): [("invalid_config", "identity is kind:value with a kind among email, github, …")],
    **{
        (method, f"/api/v1/sources/{{source_id}}/{tail}"): [_STORAGE_SETTINGS]
        for method, tail in (
            ("get", "storage"),
            ("get", "oauth/start"),
            ("delete", "credentials"),
            ("post", "storage/fetch"),
            ("post", "storage/subscription"),
        )
    },
    ("put", "/api/v1/sources/{source_id}/credentials"): [
        _STORAGE_SETTINGS,
        ("invalid_config", "set settings.oauth_grant to client_credentials first"),
        ("invalid_config", "a refresh_token is required"),
        ("credentials_refused", "the token endpoint refused: invalid_grant"),
    ],
}

_ERROR_CODES = {
    400: ("malformed_body", "the body is not valid JSON"),
    401: ("unauthorized", "an API key is required: Authorization: Bearer <key>"),
    403: ("forbidden", "these credentials may only read"),
    405: ("method_not_allowed", "PUT is not a method of this path"),
    413: ("body_too_large", "body over 1048576 bytes"),
    503: ("unavailable", "a service hub needs does not answer; try again"),
}
_HOOK_ERRORS = {
    400: ("unparseable_body", "the body is not JSON"),
    401: ("bad_signature", "the signature does not match"),
    404: ("unknown_source", "no enabled source with this id"),
    409: ("secret_already_set", "this source already has a secret"),
    503: ("storage_unavailable", "the database is unavailable: OperationalError"),
}

# operation → links to others that take the id its answer gives (OpenAPI links: clients and the
# schemathesis stateful run follow them)
_LINKS: dict[tuple[str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("post", "/api/v1/sources"): {
        "GetSource": ("get", "/api/v1/sources/{source_id}", {"source_id": "$response.body#/id"}),
        "UpdateSource": ("patch", "/api/v1/sources/{source_id}", {"source_id": "$response.body#/id"}),
        "DeleteSource": ("delete", "/api/v1/sources/{source_id}", {"source_id": "$response.body#/id"}),
        "SourceRoutes": ("get", "/api/v1/routes", {"source_id": "$response.body#/id"}),
        "ReceiveWebhook": ("post", "/hooks/{source_id}", {"source_id": "$response.body#/id"}),
    },
    ("post", "/api/v1/targets"): {
        "GetTarget": ("get", "/api/v1/targets/{target_id}", {"target_id": "$response.body#/id"}),
        "UpdateTarget": ("patch", "/api/v1/targets/{target_id}", {"target_id": "$response.body#/id"}),
        "GetBreaker": ("get", "/api/v1/targets/{target_id}/breaker", {"target_id": "$response.body#/id"}),
        "DeleteTarget": ("delete", "/api/v1/targets/{target_id}", {"target_id": "$response.body#/id"}),
    },
    ("post", "/api/v1/routes"): {
        "GetRoute": ("get", "/api/v1/routes/{route_id}", {"route_id": "$response.body#/id"}),
        "UpdateRoute": ("patch", "/api/v1/routes/{route_id}", {"route_id": "$response.body#/id"}),
        "DryRun": ("post", "/api/v1/routes/{route_id}/dry-run", {"route_id": "$response.body#/id"}),
        "DeleteRoute": ("delete", "/api/v1/routes/{route_id}", {"route_id": "$response.body#/id"}),
    },
    ("post", "/api/v1/deliveries/bulk-retry"): {
        "GetJob": ("get", "/api/v1/jobs/{job_id}", {"job_id": "$response.body#/id"}),
    },
    ("post", "/api/v1/people"): {
        "GetPerson": ("get", "/api/v1/people/{person_id}", {"person_id": "$response.body#/id"}),
        "UpdatePerson": ("patch", "/api/v1/people/{person_id}", {"person_id": "$response.body#/id"}),
        "DeletePerson": ("delete", "/api/v1/people/{person_id}", {"person_id": "$response.body#/id"}),
    },
    ("post", "/api/v1/mappings"): {
        "GetMapping": ("get", "/api/v1/mappings/{name}", {"name": "$response.body#/name"}),
        "MappingVersions": ("get", "/api/v1/mappings/{name}/versions", {"name": "$response.body#/name"}),
        "UpdateMapping": ("put", "/api/v1/mappings/{name}", {"name": "$response.body#/name"}),
        "CopyMapping": ("post", "/api/v1/mappings/{name}/copy", {"name": "$response.body#/name"}),
    },
    ("post", "/api/v1/keys"): {"DeleteKey": ("delete", "/api/v1/keys/{key_id}", {"key_id": "$response.body#/id"})},
    ("post", "/api/v1/connectors"): {
        "GetConnector": ("get", "/api/v1/connectors/{connector_id}", {"connector_id": "$response.body#/id"}),
    },
}


def _secret_example(spec: ConnectorSpec) -> str | None:
    if not spec.secret_required:
        return None
    if spec.signature.key_encoding == "whsec":
        return "whsec_" + base64.b64encode(b"an example signing key, 32 bytes").decode()
    if spec.signature.key_encoding == "base64":
        return base64.b64encode(b"an example signing key, 32 bytes").decode()
    return f"the secret {spec.title} signs with"


def source_example(spec: ConnectorSpec) -> dict[str, Any]:
    """A source for this connector, from its spec: its secret's form, the settings it requires (each
    property's first ``examples`` value, else its default)."""
    body: dict[str, Any] = {"connector": spec.id, "name": f"{spec.title} (production)"}
    secret = _secret_example(spec)
    if secret is not None:
        body["secret"] = secret
    props = spec.settings_schema.get("properties", {})
    settings = {}
    for name in spec.settings_schema.get("required", []):
        prop = props.get(name, {})
        settings[name] = (prop.get("examples") or [prop.get("default", f"<{name}>")])[0]
    if settings:
        body["settings"] = settings
    return body


def _examples_by(items: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    return {key: {"summary": summary, "value": value} for key, summary, value in items}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _not_found(path: str) -> tuple[str, str]:
    if path.startswith("/hooks/"):
        return _HOOK_ERRORS[404]
    params = [p for p in path.split("/") if p.startswith("{")]
    what = params[-1].strip("{}").removesuffix("_id") if params else "object"
    what = {"name": "mapping", "connector": "connector"}.get(what, what)
    return f"{what}_not_found", f"no {what} with id '…'"


def _conflict(response: dict[str, Any]) -> tuple[str, str]:
    text = str(response.get("description", ""))
    codes = text.removeprefix("Conflict: ").replace(":", " /").split(" / ")
    code = codes[0].strip().split()[0] if codes and codes[0].strip() else "conflict"
    return code, text


_CODE_LIST = re.compile(r"^(?:Conflict: )?[a-z][a-z0-9_]+(?: / [a-z][a-z0-9_]+)+$")


def _listed_codes(response: dict[str, Any]) -> list[str]:
    """The error codes a response's description lists (``code_a / code_b``), when it lists several."""
    text = str(response.get("description", ""))
    return text.removeprefix("Conflict: ").split(" / ") if _CODE_LIST.match(text) else []


def _describe_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        if not status.isdigit() or int(status) < 400:
            continue
        n = int(status)
        content = response.setdefault("content", {}).setdefault("application/json", {})
        if n == 422:
            rules = RULES.get((method, path), [])
            cases = [*rules, _SCHEMA] + ([_NUL] if path.startswith("/api/") or path in _GUARDED_OUTSIDE_API else [])
            content["examples"] = _examples_by(
                (f"{code}_{i}", message, _error(code, message)) for i, (code, message) in enumerate(cases)
            )
            if rules:
                response["description"] = (
                    "The request does not validate (invalid_request), holds a NUL character (invalid_text), "
                    "or breaks a rule: " + "; ".join(message for _, message in rules)
                )
            continue
        listed = _listed_codes(response)
        if listed and not path.startswith("/hooks/"):  # "code_a / code_b": an example of each
            content["examples"] = _examples_by(
                (code, code.replace("_", " "), _error(code, code.replace("_", " "))) for code in listed
            )
            continue
        if path.startswith("/hooks/") and n in _HOOK_ERRORS:
            code, message = _HOOK_ERRORS[n]
        elif n == 404:
            code, message = _not_found(path)
        elif n == 409:
            code, message = _conflict(response)
        else:
            code, message = _ERROR_CODES.get(n, ("error", str(response.get("description", ""))))
        content["example"] = _error(code, message)


def _hook_headers() -> list[dict[str, Any]]:
    """The headers the built-in connectors read, each named with the connectors that read it."""
    readers: dict[str, dict[str, set[str]]] = {}

    def add(header: str | None, role: str, connector: str) -> None:
        if header:
            slot = readers.setdefault(header.lower(), {"name": {header}, "roles": set(), "by": set()})
            slot["roles"].add(role)
            slot["by"].add(connector)

    for spec in builtin_catalogue().all():
        add(spec.signature.header, "signature", spec.id)
        add(spec.signature.timestamp_header, "timestamp", spec.id)
        add(spec.event_type.header, "event type", spec.id)
        headers = spec.dedup.header
        for header in [headers] if isinstance(headers, str) else headers or []:
            add(header, "delivery id (deduplication)", spec.id)
    return [
        {
            "name": sorted(slot["name"])[0],
            "in": "header",
            "required": False,
            "description": f"{' and '.join(sorted(slot['roles'])).capitalize()}: "
            f"read by {', '.join(sorted(slot['by']))}.",
            "schema": {"type": "string"},
        }
        for _, slot in sorted(readers.items())
        if _ != "authorization"
    ]


def _document_hooks(paths: dict[str, Any]) -> None:
    hooks = paths.get("/hooks/{source_id}", {})
    for operation in hooks.values():  # a connector may answer errors in its provider's format (SOAP…)
        for status, answer in operation.get("responses", {}).items():
            if status.startswith(("4", "5")):
                answer.setdefault("content", {}).update(
                    {"text/xml": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}}
                )
    if "200" in hooks.get("get", {}).get("responses", {}):
        hooks["get"]["responses"]["200"]["content"] = {
            "application/json": {"schema": {}, "example": {"challenge": "1a2b3c"}},
            "text/plain": {"schema": {"type": "string"}, "example": "validation-token-echoed"},
        }
    post = hooks.get("post")
    if post is None:
        return
    post["parameters"] = [*post.get("parameters", []), *_hook_headers()]
    post["requestBody"] = {
        "required": False,
        "description": "The provider's webhook, byte for byte: JSON, form-encoded (Slack, Trello…) or XML "
        "(Salesforce's SOAP). Signatures are computed over these exact bytes.",
        "content": {
            "application/json": {"schema": {}, "example": {"action": "opened", "issue": {"number": 1347}}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "text/xml": {"schema": {"type": "string"}},
        },
    }
    accepted = {
        "type": "object",
        "properties": {
            "event_id": {"type": ["string", "null"], "description": "The stored event (the first, for a batch)."},
            "event_ids": {"type": "array", "items": {"type": "string"}, "description": "A batch's events."},
            "duplicates": {"type": "integer", "description": "A batch's repeated deliveries."},
            "duplicate": {"type": "boolean", "description": "This delivery was received before."},
        },
    }
    responses = post["responses"]
    responses["202"] = {
        "description": "Verified and stored: delivery follows. A batch becomes one event per change.",
        "content": {"application/json": {"schema": accepted, "example": {"event_id": "evt_18ed2f0c5a1b2c3d9f0e1a2b"}}},
    }
    responses["200"] = {
        "description": "A repeated delivery (the first event's id, nothing delivered twice), or a handshake "
        "answered in the provider's format (a challenge echoed, a validation token, a SOAP acknowledgement).",
        "content": {
            "application/json": {"schema": accepted, "example": {"event_id": "evt_…", "duplicate": True}},
            "text/plain": {"schema": {"type": "string"}},
            "text/xml": {"schema": {"type": "string"}},
        },
    }


def _document_bodies(paths: dict[str, Any]) -> None:
    targets = paths.get("/api/v1/targets", {}).get("post", {}).get("requestBody", {})
    if targets:
        targets["content"]["application/json"]["examples"] = _examples_by(
            (kind, t.manifest.title, {"kind": kind, "name": t.manifest.title, **t.manifest.example})
            for kind, t in sorted(TARGETS.items())
        )
    sources = paths.get("/api/v1/sources", {}).get("post", {}).get("requestBody", {})
    if sources:
        sources["content"]["application/json"]["examples"] = _examples_by(
            (spec.id, spec.title, source_example(spec))
            for spec in sorted(builtin_catalogue().all(), key=lambda s: s.id)
        )


def enrich(schema: dict[str, Any]) -> None:
    """Add this module's documentation to an OpenAPI document, in place."""
    schema["tags"] = TAGS
    paths: dict[str, Any] = schema.get("paths", {})
    _document_hooks(paths)
    _document_bodies(paths)
    for path, operations in paths.items():
        for method, operation in operations.items():
            if not operation.get("description"):
                operation["description"] = OPERATIONS.get((method, path), operation.get("summary", ""))
            for param in operation.get("parameters", []):
                if not param.get("description"):
                    param["description"] = PARAMETERS.get((param["in"], param["name"]), "")
            _describe_errors(path, method, operation)
            links = _LINKS.get((method, path))
            if links:
                ok = next(code for code in operation["responses"] if code.startswith("2"))
                operation["responses"][ok]["links"] = {
                    name: {"operationRef": f"#/paths/{_pointer(p)}/{m}", "parameters": params}
                    for name, (m, p, params) in links.items()
                }


def _pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")
