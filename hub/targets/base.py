"""What every target is: a typed config, a manifest, a pure ``build_request`` and a pure ``read_answer``.

A target kind is one module in ``hub/targets/kinds/``. The engine gives it the Post, its config and a
:class:`SendInfo` (idempotency key, the thread's anchor, the clock); the request it builds may be JSON or
a form and carry an ``httpx.Auth``. :func:`hub.targets.http.send_http` sends it and hands the answer back
to ``read_answer``, which says delivered / retry / dead / gone and which remote post resulted.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol

import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import AnyHttpUrl, BaseModel, ConfigDict

from hub import __version__
from hub.mapping.post import Mention, Post
from hub.targets.egress import EgressPolicy
from hub.targets.mentions import has_mentions, hold, released
from hub.targets.secrets import SECRET, secret_paths, secret_values

if TYPE_CHECKING:
    from hub.targets.oauth import TokenCache

Outcome = Literal["delivered", "retry", "dead", "gone"]
Threading = Literal["none", "key", "anchor"]  # cannot thread (links the first post) / by the thread key / by the id
Profile = Literal["incoming-webhook", "api", "built-in"]
MAX_RETRY_AFTER = 24 * 3600.0
EXCERPT_CHARS = 500
MAX_ANSWER_BYTES = 16 * 1024


SecretUrl = Annotated[AnyHttpUrl, SECRET]  # an incoming-webhook URL: its path or query is the token


class TargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


def api_url(base: AnyHttpUrl | str, path: str) -> str:
    """``path`` under an API base URL (``https://slack.com/api`` + ``/chat.postMessage``)."""
    return str(base).rstrip("/") + path


@dataclass(frozen=True)
class Manifest:
    """What a kind says about itself: shown in the API docs, checked by the conformance suite."""

    title: str
    description: str
    profile: Profile
    threading: Threading
    body_limit: int  # the longest text the target takes, in ``limit_unit``
    example: dict[str, Any]  # a working config (placeholders for secrets)
    docs: str  # the target's own documentation this module follows
    limit_unit: Literal["chars", "bytes"] = "chars"


@dataclass(frozen=True)
class ThreadAnchor:
    """The remote post that opened a thread on a target: later posts reply to it or link it."""

    remote_id: str | None
    remote_url: str | None = None


@dataclass(frozen=True)
class SendInfo:
    """What a target knows about this send besides the Post and its config."""

    idempotency_key: str
    anchor: ThreadAnchor | None = None
    now: float = 0.0
    tokens: TokenCache | None = None  # OAuth2 tokens, for the auth a request carries
    direct_to: Mention | None = None  # send to this person directly (a route asking it, the target able)


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] | None = None  # sent form-encoded instead of JSON
    auth: httpx.Auth | None = None

    def redacted(self, secrets: Iterable[str]) -> dict[str, Any]:
        """For preview: the request with secret URLs, auth headers and secret values hidden."""
        hidden = ("authorization", "webhook-signature")
        headers = {k: ("***" if k.lower() in hidden else v) for k, v in self.headers.items()}
        out: dict[str, Any] = {"method": self.method, "url": scrub(self.url, secrets), "headers": headers}
        out["form" if self.form is not None else "body"] = self.form if self.form is not None else self.json
        if self.auth is not None:
            out["auth"] = describe_auth(self.auth)
        return json.loads(scrub(json.dumps(out, ensure_ascii=False), secrets))  # type: ignore[no-any-return]


def describe_auth(auth: httpx.Auth) -> str:
    describe = getattr(auth, "describe", None)
    return str(describe()) if callable(describe) else type(auth).__name__


@dataclass(frozen=True)
class Answer:
    """A target's answer, its body read up to MAX_ANSWER_BYTES."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: a hostile answer nested thousands deep
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class SendResult:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    remote_id: str | None = None  # the post the target created (its id, its link): the lineage
    remote_url: str | None = None


class InboxStore(Protocol):
    """Where the built-in inbox keeps its posts (hub's database, given by the engine)."""

    async def put(self, target_id: str, delivery_id: str, event_id: str, post: Post) -> str: ...


@dataclass(frozen=True)
class DeliveryContext:
    """What a target needs to send one delivery; the HTTP client and the stores are injected."""

    delivery_id: str
    event_id: str
    target_id: str
    client: httpx.AsyncClient
    timeout: float
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    anchor: ThreadAnchor | None = None
    now: float = 0.0
    tokens: TokenCache | None = None
    inbox: InboxStore | None = None
    direct_to: Mention | None = None
    direct: AiohttpTransport | None = None  # the client's own transport, for sends that need no httpx feature

    def clock(self) -> float:
        return self.now or time.time()

    def info(self) -> SendInfo:
        return SendInfo(self.delivery_id, self.anchor, self.clock(), self.tokens, self.direct_to)


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/…``: keep scheme and host, hide the secret path."""
    try:
        u = httpx.URL(url)
    except Exception:
        return "…"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}/…"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` (an error message, a traceback, an answer) with every secret hidden; for a secret URL, its
    path and query too, as client errors quote URLs in their own spelling."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if "://" not in secret:
            text = text.replace(secret, "***")
            continue
        redacted, parts = _url_secret(secret)
        text = text.replace(secret, redacted)
        for part in parts:
            text = text.replace(part, "/…" if part.startswith("/") else "…")
    return text


@functools.lru_cache(maxsize=1024)
def _url_secret(url: str) -> tuple[str, tuple[str, ...]]:
    """A secret URL's redacted form and the parts of it (path, query) to hide too: parsed once per URL."""
    try:
        u = httpx.URL(url)
    except Exception:  # not a URL httpx can read: only the whole value is replaced
        return redact_url(url), ()
    parts = (u.raw_path.decode("ascii", "replace"), u.path, u.query.decode("ascii", "replace"))
    return redact_url(url), tuple(p for p in parts if len(p) > 1)


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


def classify(status: int, profile: Profile = "incoming-webhook") -> Outcome:
    """2xx delivered; 408, 429, 5xx and 3xx (redirects are not followed) retried; 410 the endpoint is
    gone, and 404 too for an incoming-webhook URL (its token was revoked): the target is disabled; any
    other 4xx dead."""
    if 200 <= status < 300:
        return "delivered"
    if status == 410 or (status == 404 and profile == "incoming-webhook"):
        return "gone"
    if status in (408, 429) or status >= 500 or status < 400:
        return "retry"
    return "dead"


def network_error(exc: BaseException) -> str:
    """What went wrong on the way, from the whole exception chain: a refused connection or an unknown
    host is not a timeout, whatever the transport calls it."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ConnectionRefusedError):
            return f"connection refused: {exc}"
        if isinstance(err, socket.gaierror):
            return f"host not found: {exc}"
        stack += [err.__cause__, err.__context__, getattr(err, "os_error", None)]
    kind = "timeout: " if isinstance(exc, httpx.TimeoutException) else ""
    return f"{kind}{type(exc).__name__}: {exc}"


async def read_capped(resp: httpx.Response) -> bytes:
    """The start of an answer: enough for the excerpt, never a hostile target's whole body in memory."""
    out = bytearray()
    async for chunk in resp.aiter_bytes():
        out += chunk
        if len(out) >= MAX_ANSWER_BYTES:
            break
    return bytes(out[:MAX_ANSWER_BYTES])


def user_agent() -> str:
    return f"rse-hub/{__version__}"


class Target:
    """Base of every target kind. HTTP targets implement ``build_request`` (and ``read_answer`` when the
    target's answers say more than their status); others override ``deliver``."""

    kind: ClassVar[str]
    manifest: ClassVar[Manifest]
    Config: ClassVar[type[TargetConfig]]

    @property
    def title(self) -> str:
        return self.manifest.title

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """Dotted names of the secret settings (``url``, ``token``, ``oauth2.client_secret``)."""
        return tuple(".".join(p) for p in secret_paths(self.Config))

    keeps_mention_tokens: ClassVar[bool] = False  # the canonical Post as is (webhook, inbox)
    direct_identity: ClassVar[str | None] = None  # the identity kind a direct message goes to, if it can

    def direct_person(self, post: Post) -> Mention | None:
        """The first person the post mentions whom this target can message directly."""
        kind = self.direct_identity
        return next((m for m in post.mentions if kind and m.identities.get(kind)), None)

    def build_request(self, post: Post, config: Any, info: SendInfo) -> OutboundRequest:
        raise NotImplementedError

    def mention(self, person: Mention) -> str | None:
        """How this target mentions a person (from their identities); None: it writes their name."""
        return None

    def request_for(self, post: Post, config: Any, info: SendInfo) -> OutboundRequest:
        """``build_request`` with the post's mentions in this target's syntax (hub/targets/mentions.py)."""
        if self.keeps_mention_tokens or not has_mentions(post):
            return self.build_request(post, config, info)
        held_post, held = hold(post, self.mention)
        return released(self.build_request(held_post, config, info), held)  # type: ignore[no-any-return]

    def read_answer(self, answer: Answer, config: Any, now: float) -> SendResult:
        """The outcome of an answer: by status, Retry-After honoured."""
        return verdict(answer, self.manifest.profile, now)

    def secrets_of(self, config: Any) -> list[str]:
        """The secret values of a target's config (its secret URL, its tokens), to scrub from errors."""
        return secret_values(config)

    def preview(self, post: Post, config: Any) -> dict[str, Any]:
        request = self.request_for(post, config, SendInfo("preview"))
        return request.redacted(self.secrets_of(config))

    async def deliver(self, post: Post, config: Any, ctx: DeliveryContext) -> SendResult:
        from hub.targets.http import send_http  # the sending half: kept apart from the pure half

        info = ctx.info()
        request = self.request_for(post, config, info)
        return await send_http(request, ctx, lambda a: self.read_answer(a, config, info.now), self.secrets_of(config))


def verdict(answer: Answer, profile: Profile, now: float) -> SendResult:
    outcome = classify(answer.status, profile)
    return SendResult(
        outcome,
        status_code=answer.status,
        error=None if outcome == "delivered" else f"HTTP {answer.status}",
        retry_after=parse_retry_after(answer.headers.get("retry-after"), now) if outcome == "retry" else None,
    )


def refuse(result: SendResult, outcome: Outcome, error: str, retry_after: float | None = None) -> SendResult:
    """A 2xx whose body says the send failed (Slack's ``ok: false``…)."""
    return replace(result, outcome=outcome, error=error, retry_after=retry_after)
