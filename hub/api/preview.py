"""Preview: what a target would receive for a payload, without delivering anything."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.api.common import ReadKey, RuntimeDep
from hub.api.text_guard import TextGuardRoute
from hub.errors import HubError, invalid
from hub.mapping.context import mapping_context
from hub.mapping.post import Post
from hub.mapping.render import MappingError, applies, missing_fields, render_post
from hub.targets.registry import TARGETS, get_target
from hub.targets.secrets import merge

router = APIRouter(prefix="/api/v1", tags=["preview"], route_class=TextGuardRoute)


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
    target_settings: dict[str, Any] = Field(
        default_factory=dict, description="Optional kind settings; the kind's example config fills the rest."
    )


class PreviewOut(BaseModel):
    applies: bool = Field(description="False when the mapping's 'when' skips this event.")
    post: Post | None
    request: dict[str, Any] | None = Field(description="The exact request the target would receive.")
    warnings: list[str] = Field(
        default_factory=list, description="Template fields the payload lacks: they rendered empty."
    )


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="Render a payload through a mapping and a target",
    responses={403: {"description": "an inline mapping with a read key"}},
)
async def preview(body: PreviewIn, rt: RuntimeDep, who: ReadKey) -> PreviewOut:
    if isinstance(body.mapping, dict) and not who.is_admin:
        raise HubError(403, "forbidden", "an inline mapping is a template: previewing one needs an admin key")
    spec = await rt.cache.connector(body.connector)
    if spec is None:
        raise invalid(f"unknown connector {body.connector!r}", field="connector")
    target = get_target(body.target_kind)
    if target is None:
        raise invalid(f"unknown target kind {body.target_kind!r}; one of {sorted(TARGETS)}", field="target_kind")
    settings = merge(target.manifest.example, body.target_settings)  # the kind's example fills what is not given
    try:
        config = target.Config.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise invalid(f"invalid {body.target_kind} settings: {where}: {first['msg']}", field=where) from None
    context = mapping_context(
        payload=body.payload,
        spec=spec,
        event_id="evt_preview",
        event_type=body.event_type,
        source_id="src_preview",
        connector=body.connector,
        subject=None,
        received_at=0,
        source_name="preview",
        directory=await rt.cache.directory(),
    )
    try:
        mapping = rt.mappings.resolve(body.connector, body.event_type, body.mapping)
        if not applies(mapping, context):
            return PreviewOut(applies=False, post=None, request=None)
        post = render_post(mapping, context)
        warnings = missing_fields(mapping, context)
    except MappingError as exc:
        raise HubError(422, "mapping_failed", str(exc)) from None
    return PreviewOut(applies=True, post=post, request=target.preview(post, config), warnings=warnings)
