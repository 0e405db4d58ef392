"""Schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

``documented_refusals_only`` replaces schemathesis' ``positive_data_acceptance``: data the schema calls
valid may still break a business rule the schema cannot say (a source that needs a secret, a route to an
unknown source, NUL in text, a GET on a source without a handshake). Such a refusal passes only with a
status the operation documents and an error code among that answer's documented examples; anything else
(an undocumented status, a 400 on valid JSON, another code) fails the run.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

ACCEPTED = {401, 403, 404, 409, 429}  # as positive_data_acceptance: credentials, ids drawn at random, state


def _documented_codes(answer: dict[str, Any]) -> set[str]:
    media = answer.get("content", {}).get("application/json", {})
    examples = [e.get("value") for e in media.get("examples", {}).values()] + [media.get("example")]
    return {e["error"]["code"] for e in examples if isinstance(e, dict) and "error" in e}


@schemathesis.check
def documented_refusals_only(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in ACCEPTED or status >= 500:  # 5xx: not_a_server_error's business
        return None
    answer = case.operation.definition.raw.get("responses", {}).get(str(status))
    if answer is None:
        raise AssertionError(f"valid data refused with an undocumented {status}: {response.text[:300]}")
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):  # a provider's format: Salesforce's SOAP fault names it
        found = re.search(r"<hub:code[^>]*>([^<]+)<", response.text)
        if found is None:
            raise AssertionError(f"valid data refused with {status} and no error code: {response.text[:300]}") from None
        code = found.group(1)
    documented = _documented_codes(answer)
    if code not in documented:
        raise AssertionError(f"valid data refused with {status} {code!r}, not a documented {sorted(documented)}")
    return None
