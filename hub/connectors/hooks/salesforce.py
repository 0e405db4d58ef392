"""Salesforce Outbound Messages: SOAP in, SOAP ``<Ack>true</Ack>`` out.

https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm
A message is a SOAP 1.1 ``notifications`` element (namespace ``http://soap.sforce.com/2005/09/outbound``,
WSDL: sforce_api_om_outboundmessaging_wsdl.htm) with ``OrganizationId``, ``ActionId``, ``SessionId``,
``EnterpriseUrl``, ``PartnerUrl`` and up to 100 ``Notification`` (each an ``Id`` and an ``sObject``).
Salesforce retries every message it does not see acknowledged for 24 hours, and "may deliver a message
more than once": the listener checks the notification ``Id`` and must acknowledge duplicates as well.

There is no signature. A message is accepted when its ``OrganizationId`` is the source's
``organization_id`` (15 and 18 characters name the same org: the first 15 are compared, case-sensitively)
and, when the source has a secret, when the URL's ``token`` query parameter equals it (the endpoint URL
given to Salesforce carries it: Salesforce sends no header of ours).

The XML is parsed with the standard library's expat, refusing any document type declaration (SOAP
forbids one): no entity can be declared, so none is expanded (billion laughs) or fetched (XXE).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit
from xml.parsers import expat

from hub.connectors.connector import Receipt, Reply, SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, event_for, storable
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, wire_bytes
from hub.errors import HubError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OM_NS = "http://soap.sforce.com/2005/09/outbound"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TOKEN_PARAM = "token"
MAX_DEPTH = 32
MAX_NOTIFICATIONS = 100
_ORG_ID = re.compile(r"^00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")
# never kept in a payload: a session id is a live credential of the org
_ENVELOPE_FIELDS = {"OrganizationId": "organization_id", "ActionId": "action_id", "EnterpriseUrl": "enterprise_url"}
_ENVELOPE_FIELDS["PartnerUrl"] = "partner_url"

ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body>"
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>'
    b"</soapenv:Body>"
    b"</soapenv:Envelope>"
)
XML = "text/xml; charset=utf-8"


class XmlRefused(Exception):
    """The body is not a SOAP message hub will read."""


@dataclass
class Element:
    ns: str
    name: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: str = ""

    def child(self, ns: str, name: str) -> Element | None:
        return next((c for c in self.children if c.ns == ns and c.name == name), None)

    def all(self, ns: str, name: str) -> list[Element]:
        return [c for c in self.children if c.ns == ns and c.name == name]

    @property
    def nil(self) -> bool:
        return self.attrs.get(f"{XSI} nil", "").strip() in ("true", "1")


def _split_name(qualified: str) -> tuple[str, str]:
    ns, sep, local = qualified.rpartition(" ")
    return (ns, local) if sep else ("", qualified)


def parse_xml(body: bytes) -> Element:
    """A small element tree from untrusted XML: no DTD (so no entities), a bounded depth."""
    parser = expat.ParserCreate(namespace_separator=" ")
    stack: list[Element] = []
    root: list[Element] = []

    def refuse_dtd(*_: Any) -> None:
        raise XmlRefused("a document type declaration is not allowed in a SOAP message")

    def start(qualified: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise XmlRefused("the XML is nested too deeply")
        ns, name = _split_name(qualified)
        el = Element(ns, name, attrs)
        if stack:
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(_: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = refuse_dtd  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, LookupError, ValueError) as exc:  # LookupError: an unknown declared encoding
        raise XmlRefused(f"the body is not well-formed XML: {exc}") from None
    except RecursionError:  # pragma: no cover - depth is bounded above
        raise XmlRefused("the XML is nested too deeply") from None
    if not root:
        raise XmlRefused("the body holds no XML element")
    return root[0]


def notifications_of(body: bytes) -> Element:
    """The ``notifications`` element of an Outbound Message envelope."""
    root = parse_xml(body)
    soap_body = root.child(SOAP_ENV, "Body") if (root.ns, root.name) == (SOAP_ENV, "Envelope") else None
    found = soap_body.child(OM_NS, "notifications") if soap_body is not None else None
    if found is None:
        raise XmlRefused("the body is not an Outbound Message (no soapenv:Body/notifications)")
    return found


def _text(el: Element | None) -> str | None:
    return None if el is None or el.nil else el.text.strip()


def same_org(presented: str, configured: str) -> bool:
    """15- and 18-character ids of one org share their first 15 characters (case-sensitive)."""
    return hmac.compare_digest(presented.strip()[:15].encode(), configured.strip()[:15].encode())


def sobject_type(sobject: Element) -> str | None:
    declared = sobject.attrs.get(f"{XSI} type", "").strip()
    name = declared.rpartition(":")[2]
    return name or None


def sobject_fields(sobject: Element) -> dict[str, str | None]:
    """The sObject's fields as Salesforce names them (``Name``, ``StageName``, ``Invoice_Total__c``…)."""
    return {c.name: _text(c) for c in sobject.children}


def record_url(base: str | None, record_id: str | None) -> str | None:
    """The record in Salesforce: its id on the org's host (from EnterpriseUrl or PartnerUrl)."""
    if not base or not record_id:
        return None
    parts = urlsplit(base)
    if parts.scheme != "https" or not parts.hostname:
        return None
    return f"https://{parts.netloc}/{record_id}"


def payloads_of(notifications: Element) -> list[dict[str, Any]]:
    """One payload per Notification: the envelope's ids and URLs (never the SessionId), the notification
    id, the sObject's type and fields, and a link to the record."""
    envelope = {key: _text(notifications.child(OM_NS, tag)) for tag, key in _ENVELOPE_FIELDS.items()}
    out: list[dict[str, Any]] = []
    for note in notifications.all(OM_NS, "Notification"):
        sobject = note.child(OM_NS, "sObject")
        if sobject is None:
            raise ParseError("a Notification has no sObject")
        fields = sobject_fields(sobject)
        out.append(
            {
                "notification_id": _text(note.child(OM_NS, "Id")),
                "object_type": sobject_type(sobject),
                **envelope,
                "record_url": record_url(envelope["enterprise_url"] or envelope["partner_url"], fields.get("Id")),
                "sObject": fields,
            }
        )
    return out


def soap_fault(status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """A SOAP 1.1 fault: Client for what the request got wrong, Server for what hub could not do."""
    who = "soapenv:Server" if status >= 500 else "soapenv:Client"
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>{who}</faultcode><faultstring>{text}</faultstring>"
        f'<detail><hub:code xmlns:hub="urn:rse-hub">{code}</hub:code></detail>'
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Reply(status, body.encode(), XML, headers)


_SESSION_ID = re.compile(rb"<([A-Za-z0-9_]+:)?SessionId>[^<]*</([A-Za-z0-9_]+:)?SessionId>")


class Hooks(SpecHooks):
    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None:
        if secret:  # before reading any XML: without the token, nothing of the body is parsed
            token = req.query.get(TOKEN_PARAM)
            if not token:
                raise VerificationError("missing_signature", f"the URL has no {TOKEN_PARAM} parameter")
            if not hmac.compare_digest(wire_bytes(token), secret.encode()):
                raise VerificationError("bad_signature", f"the URL's {TOKEN_PARAM} parameter does not match")
        configured = str(source.settings.get("organization_id") or "").strip()
        if not _ORG_ID.match(configured):
            raise VerificationError("bad_signature", "the source's organization_id is not a 15- or 18-character id")
        try:
            presented = _text(notifications_of(req.body).child(OM_NS, "OrganizationId"))
        except XmlRefused as exc:
            raise VerificationError("missing_signature", f"no OrganizationId can be read: {exc}") from None
        if not presented:
            raise VerificationError("missing_signature", "the message has no OrganizationId")
        if not same_org(presented, configured):
            raise VerificationError("bad_signature", "the message's OrganizationId is not the source's organization")

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        try:
            payloads = payloads_of(notifications_of(req.body))
        except XmlRefused as exc:
            raise ParseError(str(exc)) from None
        if not payloads:
            raise ParseError("the message holds no Notification")
        if len(payloads) > MAX_NOTIFICATIONS:
            raise ParseError(f"a message holds at most {MAX_NOTIFICATIONS} notifications", "too_many_events")
        events: list[ParsedEvent] = []
        for payload in payloads:
            if not payload["object_type"]:
                raise ParseError("an sObject has no xsi:type", "missing_event_type")
            ev = event_for(spec, req, payload)
            events.append(replace(ev, type=storable(f"{payload['object_type']}.outbound", 200)))
        return events

    def stored_body(self, spec: ConnectorSpec, req: RawRequest) -> bytes:
        """The message as kept, its SessionId (an API session of the sending user, when the admin ticked
        "Send Session ID") blanked."""
        return _SESSION_ID.sub(rb"<\1SessionId>***</\2SessionId>", req.body)

    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply:
        """Every accepted message, repeats included: without this Ack Salesforce retries for 24 hours."""
        return Reply(200, ACK, XML)

    def error_reply(self, spec: ConnectorSpec, error: HubError) -> Reply | None:
        return soap_fault(error.status, error.code, error.message, tuple((error.headers or {}).items()))

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        view = super().view(spec, event_type, payload)
        fields = payload.get("sObject") if isinstance(payload, dict) else None
        if isinstance(fields, dict):
            view["action"] = record_action(fields)
        return view


def record_action(fields: dict[str, Any]) -> str:
    """What the message most likely says happened. An Outbound Message carries the record's state, not
    the change: won/lost from an opportunity's flags, created when it was never modified since."""
    if fields.get("IsWon") == "true":
        return "won"
    if fields.get("IsClosed") == "true" and fields.get("IsWon") == "false":
        return "lost"
    created, modified = fields.get("CreatedDate"), fields.get("LastModifiedDate")
    if created and created == modified:
        return "created"
    return "updated"
