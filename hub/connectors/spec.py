"""The connector spec format (one YAML file per provider under ``connectors/``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]
CONFIGURABLE = frozenset({"header", "algorithm", "encoding", "prefix", "signed", "key_encoding"})
SECRET_MARK = "<secret>"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignatureSpec(_Strict):
    """How a request proves it comes from the provider."""

    scheme: Literal["hmac", "token", "basic", "none"] = Field(
        "hmac",
        description="hmac: a digest of the signed content; token: the header equals prefix + secret; "
        "basic: HTTP Basic with the source's settings.username and the secret as password; none.",
    )
    header: str = ""
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    prefix: str = Field("", description="Text before the digest in the header, e.g. 'sha256=' or 'v1,'.")
    signed: str = Field("{body}", description="What is signed: {body}, {header:Name}, {method}, {url}.")
    key_encoding: Literal["utf8", "base64", "whsec"] = "utf8"
    multiple: StrictBool = Field(False, description="The header carries several signatures; one must match.")
    separator: str = " "
    timestamp_header: str | None = None
    timestamp_field: str | None = Field(
        None,
        description="A dotted path to the timestamp in the JSON body, checked once the signature matches "
        "(the body is then proven); missing: missing_signature.",
    )
    timestamp_unit: Literal["s", "ms"] = Field("s", description="The timestamp counts seconds or milliseconds.")
    tolerance_seconds: int | None = None
    future_tolerance_seconds: int | None = Field(
        None, ge=0, description="How far ahead of hub's clock a timestamp may be; default: tolerance_seconds."
    )
    header_setting: str | None = Field(
        None,
        description="token scheme: a source setting 'Name: value with <secret>' naming the header and the value "
        "it must equal; when the source leaves it unset, the header equals prefix + secret.",
    )
    configurable: list[str] = Field(default_factory=list, description="Fields a source may override.")

    @model_validator(mode="after")
    def _check(self) -> SignatureSpec:
        if self.scheme != "none" and not self.header:
            raise ValueError("signature.header is required unless scheme is 'none'")
        if self.multiple and not self.separator:
            raise ValueError("signature.separator must not be empty when multiple is true")
        if self.timestamp_header and self.timestamp_field:
            raise ValueError("signature has a timestamp_header or a timestamp_field, not both")
        if self.header_setting and self.scheme != "token":
            raise ValueError("signature.header_setting is for the token scheme")
        unknown = set(self.configurable) - CONFIGURABLE
        if unknown:
            raise ValueError(f"signature.configurable has unknown fields {sorted(unknown)}")
        return self

    def token_header(self, settings: Mapping[str, Any]) -> tuple[str, str]:
        """token scheme: the header carrying the token and the value it must equal, ``<secret>`` standing
        for the secret. From the source setting ``header_setting`` when set ("Name: value"), else the spec's
        header and prefix. ValueError when the setting says no header or leaves the secret out."""
        given = settings.get(self.header_setting) if self.header_setting else None
        if given in (None, ""):
            return self.header, self.prefix + SECRET_MARK
        name, colon, value = str(given).partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name) or SECRET_MARK not in value:
            raise ValueError(f"settings.{self.header_setting} must be 'Header-Name: value with {SECRET_MARK}'")
        return name, value


class EventTypeSpec(_Strict):
    """Where the event type is: a header, then templates, then a body field with an optional action field
    appended."""

    header: str | None = None
    templates: list[str] = Field(
        default_factory=list,
        description="Templates like '{object_kind}.{object_attributes.action}' tried in order after the header: "
        "the first whose fields all exist (non-empty, not objects) is the type.",
    )
    field: str | None = None
    action_field: str | None = None
    default: str = "event"
    required: StrictBool = Field(
        False,
        description="A request without the event type (header, templates or field) is refused: 400 missing_event_type.",
    )


class DedupSpec(_Strict):
    """What makes two deliveries the same event: a delivery id (the first header, field or template present),
    or a hash of the body. With ``window_seconds`` a repeat counts only within that time (providers whose every
    notification looks the same: later changes must get through)."""

    header: str | list[str] | None = None
    field: str | None = None
    templates: list[str] = Field(
        default_factory=list,
        description="Templates like '{meta.entity}:{meta.id}' tried after the header and field: the first whose "
        "fields all exist gives the id.",
    )
    content_hash: StrictBool = Field(False, description="Use a hash of the body when no header or field gives an id.")
    window_seconds: float | None = Field(None, gt=0, le=86400)

    def headers(self) -> list[str]:
        if self.header is None:
            return []
        return [self.header] if isinstance(self.header, str) else list(self.header)


ViewValue = str | list[str]


class ObjectView(_Strict):
    """The business object an event is about. Each value is a template like ``{issue.title}`` (or a list
    of them: the first whose fields all exist); text without braces is taken literally."""

    kind: ViewValue = ""
    id: ViewValue = ""
    title: ViewValue = ""
    url: ViewValue = ""
    state: ViewValue = ""


class ActorView(_Strict):
    name: ViewValue = ""
    email: ViewValue = ""
    id: ViewValue = ""


class ViewSpec(_Strict):
    """The normalised view offered to mappings beside the raw payload: ``view.object``, ``view.actor``,
    ``view.action``."""

    object: ObjectView = ObjectView()
    actor: ActorView = ActorView()
    action: ViewValue = ""


class ChallengeSpec(_Strict):
    """A verification handshake answered from the body, e.g. Slack ``url_verification``."""

    field: str
    equals: str
    echo_field: str


class QueryEchoSpec(_Strict):
    """A GET handshake that echoes a query parameter, e.g. Dropbox ``?challenge=``."""

    param: str


class HandshakeSpec(_Strict):
    ignore_types: list[str] = Field(default_factory=list, description="Accepted and stored, never routed.")
    challenge: ChallengeSpec | None = None
    query_echo: QueryEchoSpec | None = None


class ConnectorSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    title: str
    description: str = ""
    docs: str = ""
    signature: SignatureSpec
    event_type: EventTypeSpec = EventTypeSpec()
    dedup: DedupSpec = DedupSpec()
    subject: list[str] = Field(
        default_factory=list,
        description="Templates like '{repo.name}#{issue.number}'; "
        "the first whose fields all exist names the business object.",
    )
    form_field: str | None = Field(None, description="Form-encoded bodies carry the JSON in this field.")
    handshake: HandshakeSpec = HandshakeSpec()
    events: dict[str, str] = Field(default_factory=dict, description="Event types understood, with a summary.")
    views: dict[str, ViewSpec] = Field(
        default_factory=dict,
        description="Event type pattern (shell wildcards) → the normalised view; the first pattern that matches.",
    )
    settings_schema: dict[str, Any] = Field(default_factory=dict)
    secret_settings: list[str] = Field(
        default_factory=list, description="Settings that are secrets: encrypted at rest, never returned."
    )
    secret_required: StrictBool = True
    hooks: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]+$",
        description="A module of hub.connectors.hooks for what the spec cannot say (handshakes, batches, replies).",
    )
    setup: str = Field("", description="Markdown: how to point the provider at hub (what to paste where).")
    secret_help: str = Field("", description="What the source's secret is at the provider, in a few words.")

    def signature_for(self, overrides: dict[str, Any] | None) -> SignatureSpec:
        """The signature spec after a source's allowed overrides."""
        if not overrides:
            return self.signature
        if not isinstance(overrides, dict):
            raise ValueError("settings.signature must be an object")
        allowed = {k: v for k, v in overrides.items() if k in self.signature.configurable}
        if not allowed:
            return self.signature
        return SignatureSpec.model_validate({**self.signature.model_dump(), **allowed})
