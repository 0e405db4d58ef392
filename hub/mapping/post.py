"""The canonical Post every target renders."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Author(BaseModel):
    name: str
    url: str | None = None
    avatar: str | None = None


class PostField(BaseModel):
    name: str
    value: str


class Post(BaseModel):
    """One RSE post: what every mapping produces and every target consumes."""

    title: str = Field(description="One line, plain text.")
    body: str = Field("", description="Markdown.")
    link: str | None = Field(None, description="Where the business object lives.")
    author: Author | None = None
    thread_key: str | None = Field(None, description="Posts with the same key belong to one RSE thread.")
    fields: list[PostField] = Field(default_factory=list)
    audience: list[str] = Field(default_factory=list, description="Groups or people the post is meant for.")
    event_type: str = ""
    event_id: str = ""
    source_id: str = ""
