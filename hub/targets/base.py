"""What every target is: a config model, which of its fields are secret, and how a Post is sent."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import __version__
from hub.mapping.post import Post
from hub.targets.egress import EgressBlocked, EgressPolicy, egress_refusal

Outcome = Literal["delivered", "retry", "dead", "gone"]
MAX_RETRY_AFTER = 24 * 3600.0
EXCERPT_CHARS = 500
MAX_ANSWER_BYTES = 16 * 1024


class TargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: Any

    def redacted(self, secret_fields: dict[str, str]) -> dict[str, Any]:
        """For preview: the request with the URL's secret path and auth headers hidden."""
        headers = {k: ("***" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        url = redact_url(self.url) if self.url in secret_fields.values() else self.url
        return {"method": self.method, "url": url, "headers": headers, "body": self.json}


@dataclass
class SendResult:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryContext:
    """What a target needs to send one delivery; the HTTP client is injected."""

    delivery_id: str
    event_id: str
    target_id: str
    client: httpx.AsyncClient
    timeout: float
    engine: AsyncEngine
    egress: EgressPolicy = field(default_factory=EgressPolicy)


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/…``: keep scheme and host, hide the secret path."""
    try:
        u = httpx.URL(url)
    except Exception:
        return "…"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}/…"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` (an error message, a traceback) with every secret hidden; for a secret URL, its path and
    query too, as client errors quote URLs in their own spelling."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, redact_url(secret) if "://" in secret else "***")
        if "://" in secret:
            try:
                u = httpx.URL(secret)
            except Exception:  # not a URL httpx can read: the whole value was replaced above
                continue
            for part in (u.raw_path.decode("ascii", "replace"), u.path, u.query.decode("ascii", "replace")):
                if len(part) > 1:
                    text = text.replace(part, "/…" if part.startswith("/") else "…")
    return text


def parse_retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify(status: int) -> Outcome:
    """2xx delivered; 408, 429, 5xx and 3xx (redirects are not followed) retried; 410 the endpoint is gone
    (Standard Webhooks: disable it); any other 4xx dead."""
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    if status in (408, 429) or status >= 500 or status < 400:
        return "retry"
    return "dead"


def user_agent() -> str:
    return f"rse-hub/{__version__}"


class Target:
    """Base of every target kind. HTTP targets implement ``build_request``; others override ``deliver``."""

    kind: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[TargetConfig]]
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def build_request(self, post: Post, config: Any, idempotency_key: str) -> OutboundRequest | None:
        raise NotImplementedError

    def secrets_of(self, config: Any) -> list[str]:
        """The secret values of a target's config (its secret URL, its tokens), to scrub from errors."""
        return [str(getattr(config, k)) for k in self.secret_fields if getattr(config, k, None)]

    def preview(self, post: Post, config: Any) -> dict[str, Any]:
        req = self.build_request(post, config, "preview")
        if req is None:
            return {"post": post.model_dump()}
        secrets = {k: str(getattr(config, k)) for k in self.secret_fields if getattr(config, k, None)}
        return req.redacted(secrets)

    async def deliver(self, post: Post, config: Any, ctx: DeliveryContext) -> SendResult:
        req = self.build_request(post, config, ctx.delivery_id)
        if req is None:
            raise NotImplementedError(f"target {self.kind} builds no request and has no deliver()")
        return await send_http(req, ctx)


async def _read_capped(resp: httpx.Response) -> bytes:
    """The start of an answer: enough for the excerpt, never a hostile target's whole body in memory."""
    out = bytearray()
    async for chunk in resp.aiter_bytes():
        out += chunk
        if len(out) >= MAX_ANSWER_BYTES:
            break
    return bytes(out[:MAX_ANSWER_BYTES])


async def send_http(req: OutboundRequest, ctx: DeliveryContext) -> SendResult:
    """Send one request and classify the answer; network errors and timeouts are retried."""
    started = time.perf_counter()
    headers = {"User-Agent": user_agent(), "Content-Type": "application/json", **req.headers}
    content = json.dumps(req.json, ensure_ascii=False, separators=(",", ":")).encode(errors="replace")
    try:
        ctx.egress.check_url(req.url)
        request = ctx.client.build_request(req.method, req.url, content=content, headers=headers, timeout=ctx.timeout)
        resp = await ctx.client.send(request, stream=True)
        try:
            answer = await _read_capped(resp)
        finally:
            await resp.aclose()
    except EgressBlocked as exc:  # a configuration error: retrying would not help
        return SendResult("dead", error=str(exc)[:500], latency_ms=(time.perf_counter() - started) * 1000)
    except Exception as exc:  # network errors, timeouts, answers the client cannot read: retried
        latency = (time.perf_counter() - started) * 1000
        if blocked := egress_refusal(exc):  # a host name that resolved to refused addresses only
            return SendResult("dead", error=str(blocked)[:500], latency_ms=latency)
        kind = "timeout: " if isinstance(exc, httpx.TimeoutException) else ""
        error = scrub(f"{kind}{type(exc).__name__}: {exc}", [req.url, *req.headers.values()])
        return SendResult("retry", error=error[:500], latency_ms=latency)
    latency = (time.perf_counter() - started) * 1000
    outcome = classify(resp.status_code)
    excerpt = answer.decode(resp.encoding or "utf-8", "replace")[:EXCERPT_CHARS] if answer else None
    return SendResult(
        outcome,
        status_code=resp.status_code,
        error=None if outcome == "delivered" else f"HTTP {resp.status_code}",
        response_excerpt=excerpt,
        retry_after=parse_retry_after(resp.headers.get("retry-after"), time.time()),
        latency_ms=latency,
    )
