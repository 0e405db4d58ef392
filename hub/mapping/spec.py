"""The mapping file format (YAML under ``mappings/<connector>/``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AuthorTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    url: str = ""
    avatar: str = ""


class PostTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    body: str = ""
    link: str = ""
    author: AuthorTemplate | None = None
    thread_key: str = Field("", description="Default: the connector's subject of the event.")
    fields: dict[str, str] = Field(default_factory=dict, description="Name → template; empty values dropped.")
    audience: list[str] = Field(default_factory=list)


class MappingSpec(BaseModel):
    """``when`` (optional) decides whether to post at all; ``post`` holds one template per Post field."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    events: list[str] = Field(default_factory=list, description="Event types this mapping is written for.")
    when: str = Field("", description="A template; rendering to false/empty/0 skips the event.")
    post: PostTemplate
