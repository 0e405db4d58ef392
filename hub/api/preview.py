"""Preview: what a target would receive for a payload, without delivering anything."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.api.common import ReadKey, RuntimeDep
from hub.api.text_guard import TextGuardRoute
from hub.errors import HubError, invalid
from hub.mapping.post import Post
from hub.mapping.render import MappingError, applies, render_post
from hub.targets.registry import TARGETS, get_target

router = APIRouter(prefix="/api/v1", tags=["preview"], route_class=TextGuardRoute)
_PLACEHOLDER_URL = "https://example.invalid/hook"


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "connector": "github",
                    "event_type": "issues.opened",
                    "target_kind": "talkspirit",
                    "payload": {
                        "action": "opened",
                        "issue": {
                            "number": 1347,
                            "title": "Found a bug",
                            "html_url": "https://github.com/octocat/Hello-World/issues/1347",
                            "body": "It breaks.",
                        },
                        "repository": {"full_name": "octocat/Hello-World"},
                        "sender": {"login": "octocat"},
                    },
                }
            ]
        },
    )
    connector: str
    event_type: str
    payload: Any
    mapping: str | dict[str, Any] | None = Field(
        None, description="Name, inline mapping (admin keys only: templates are code), or the default."
    )
    target_kind: str = "webhook"
    target_settings: dict[str, Any] = Field(default_factory=dict, description="Optional kind settings.")


class PreviewOut(BaseModel):
    applies: bool = Field(description="False when the mapping's 'when' skips this event.")
    post: Post | None
    request: dict[str, Any] | None = Field(description="The exact request the target would receive.")


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="Render a payload through a mapping and a target",
    responses={403: {"description": "an inline mapping with a read key"}},
)
async def preview(body: PreviewIn, rt: RuntimeDep, who: ReadKey) -> PreviewOut:
    if isinstance(body.mapping, dict) and not who.is_admin:
        raise HubError(403, "forbidden", "an inline mapping is a template: previewing one needs an admin key")
    if await rt.cache.connector(body.connector) is None:
        raise invalid(f"unknown connector {body.connector!r}", field="connector")
    target = get_target(body.target_kind)
    if target is None:
        raise invalid(f"unknown target kind {body.target_kind!r}; one of {sorted(TARGETS)}", field="target_kind")
    settings = dict(body.target_settings)
    if "url" in target.Config.model_fields:
        settings.setdefault("url", _PLACEHOLDER_URL)
    try:
        config = target.Config.model_validate(settings)
    except ValidationError as exc:
        raise invalid(f"invalid {body.target_kind} settings: {exc.errors()[0]['msg']}") from None
    context = {
        "payload": body.payload,
        "event": {
            "id": "evt_preview",
            "type": body.event_type,
            "source_id": "src_preview",
            "connector": body.connector,
            "subject": None,
            "received_at": 0,
        },
        "source": {"id": "src_preview", "name": "preview"},
    }
    try:
        mapping = rt.mappings.resolve(body.connector, body.event_type, body.mapping)
        if not applies(mapping, context):
            return PreviewOut(applies=False, post=None, request=None)
        post = render_post(mapping, context)
    except MappingError as exc:
        raise HubError(422, "mapping_failed", str(exc)) from None
    return PreviewOut(applies=True, post=post, request=target.preview(post, config))
