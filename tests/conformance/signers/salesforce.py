"""Salesforce Outbound Messages carry no signature. What proves a message: its OrganizationId (the org the
source names in settings.organization_id) and, as hub documents for this connector, the token the admin
appended to the Endpoint URL given to Salesforce (?token=<the source's secret>): Salesforce calls that URL
exactly as configured. Docs: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_setting_up.htm
(Endpoint URL), …/sforce_api_om_outboundmessaging_wsdl.htm (OrganizationId).
Fixtures: tests/fixtures/salesforce/SOURCES.md.

The fixtures carry the token in their ``query`` (the URL as Salesforce calls it); sign() sets it to the
secret being tried."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.conformance.kit import Req

ID = "salesforce"
SECRET = "sf-0utb0und-t0ken"
WRONG_SECRET = "sf-0utb0und-t0kem"
BODY_SIGNED = False
TIMESTAMPED = False
PROOF_HEADERS: list[str] = []
SETTINGS = {"organization_id": "00Di0000000ilESEAY"}


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    base, _, query = req.url.partition("?")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return replace(req, url=f"{base}?{urlencode([*params, ('token', secret)])}")
