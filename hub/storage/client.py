"""The HTTP side of a provider API, injected into the provider modules: bearer token from the source's
credentials (one refresh on a 401), the egress policy, capped answers, and every failure classified as for
targets — 408/429/5xx (and network errors) are retried, honouring Retry-After; other 4xx are refused, a
visible failure on the source. Messages carry the status and the provider's error code, never a token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from hub.targets.base import network_error, parse_retry_after, scrub, user_agent
from hub.targets.egress import EgressBlocked, EgressPolicy, egress_refusal
from hub.targets.oauth import RenewableAuth, TokenError

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a page of changes; a bigger answer is refused, not read
FailureKind = Literal["retry", "refused"]
TOKEN_ENDPOINT = "token_endpoint"  # the code of a failure at the token endpoint (the credentials, not the API)


class ProviderError(Exception):
    """A provider call failed: ``retry`` (throttled, unavailable, unreachable) or ``refused`` (the provider said
    no: fix the credentials or the settings). ``code`` is the provider's own error code when it gave one."""

    def __init__(
        self,
        message: str,
        kind: FailureKind,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class ProviderAnswer:
    status: int
    headers: httpx.Headers
    body: bytes
    what: str

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, RecursionError):
            raise ProviderError(f"{self.what}: the answer is not JSON", "refused", self.status) from None

    def object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise ProviderError(f"{self.what}: the answer is not a JSON object", "refused", self.status)
        return data


def error_code(body: bytes) -> str:
    """The provider's error code from an error answer: Dropbox ``error_summary``, Graph ``error.code``,
    Google ``error.status`` (or its first reason), an OAuth-style ``error``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get("error_summary"), str):
        return str(data["error_summary"])
    err = data.get("error")
    if isinstance(err, str):
        return err
    if isinstance(err, dict):
        for key in ("code", "status", ".tag"):
            if isinstance(err.get(key), str) and err[key]:
                return str(err[key])
        errors = err.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("reason") or "")
    return ""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class ProviderClient:
    """Calls one provider's API for one source. ``origins``: where its bearer token may be sent (the API base
    URL's); a link from an answer (Graph's nextLink) elsewhere is refused."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        auth: RenewableAuth | None,
        origins: set[str],
        timeout: float,
        egress: EgressPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._auth = auth
        self._origins = {o.lower() for o in origins}
        self._timeout = timeout
        self._egress = egress or EgressPolicy()
        self._clock = clock
        self.calls = 0

    def _hidden(self) -> list[str]:
        return self._auth.secrets() if self._auth else []

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        resp = await self._http.send(request, auth=self._auth or httpx.USE_CLIENT_DEFAULT, stream=True)
        try:
            out = bytearray()
            async for chunk in resp.aiter_bytes():
                out += chunk
                if len(out) > MAX_ANSWER_BYTES:
                    raise ProviderError(f"answer over {MAX_ANSWER_BYTES} bytes", "refused", resp.status_code)
            return resp.status_code, resp.headers, bytes(out)
        finally:
            await resp.aclose()

    async def call(
        self,
        method: str,
        url: str,
        what: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> ProviderAnswer:
        """One request; the answer when it is 2xx, else a ProviderError."""
        if origin(url) not in self._origins:
            raise ProviderError(f"{what}: {origin(url)} is not the provider's API (api_base_url)", "refused")
        all_headers = {"User-Agent": user_agent(), "Accept": "application/json", **(headers or {})}
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            all_headers.setdefault("Content-Type", "application/json")
        else:
            content = raw_body or b""
        self.calls += 1
        try:
            self._egress.check_url(url)
            request = self._http.build_request(
                method, url, params=params, content=content or None, headers=all_headers, timeout=self._timeout
            )
            status, resp_headers, body = await self._send(request)
            if status == 401 and self._auth is not None and await self._auth.renew():
                request = self._http.build_request(
                    method, url, params=params, content=content or None, headers=all_headers, timeout=self._timeout
                )
                status, resp_headers, body = await self._send(request)
                if status == 401:
                    code = scrub(error_code(body), self._hidden())[:200]
                    raise ProviderError(
                        f"{what}: the provider refused a fresh access token (HTTP 401{' ' + code if code else ''}): "
                        "reconnect the source",
                        "refused",
                        401,
                        TOKEN_ENDPOINT,
                    )
        except ProviderError:
            raise
        except EgressBlocked as exc:
            raise ProviderError(f"{what}: {exc}", "refused") from None
        except TokenError as exc:
            kind: FailureKind = "retry" if exc.outcome == "retry" else "refused"
            raise ProviderError(f"{what}: {scrub(str(exc), self._hidden())}", kind, code=TOKEN_ENDPOINT) from None
        except Exception as exc:
            if blocked := egress_refusal(exc):
                raise ProviderError(f"{what}: {blocked}", "refused") from None
            raise ProviderError(f"{what}: {scrub(network_error(exc), self._hidden())}", "retry") from None
        if 200 <= status < 300:
            return ProviderAnswer(status, resp_headers, body, what)
        code = scrub(error_code(body), self._hidden())[:200]
        message = f"{what}: HTTP {status}{' ' + code if code else ''}"
        if status in (408, 429) or status >= 500 or status < 400:
            retry_after = parse_retry_after(resp_headers.get("retry-after"), self._clock())
            raise ProviderError(message, "retry", status, code, retry_after)
        raise ProviderError(message, "refused", status, code)
