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


class Mention(BaseModel):
    """A person a post mentions (``[@Name](mention:<id>)`` in its text), with their identities."""

    id: str
    name: str
    identities: dict[str, str] = Field(default_factory=dict)


class Post(BaseModel):
    """One RSE post: what every mapping produces and every target consumes."""

    title: str = Field(description="One line, plain text.")
    body: str = Field("", description="Markdown.")
    link: str | None = Field(None, description="Where the business object lives.")
    author: Author | None = None
    thread_key: str | None = Field(None, description="Posts with the same key belong to one RSE thread.")
    fields: list[PostField] = Field(default_factory=list)
    audience: list[str] = Field(default_factory=list, description="Groups or people the post is meant for.")
    mentions: list[Mention] = Field(
        default_factory=list, description="People mentioned in the text; each target renders them its own way."
    )
    event_type: str = ""
    event_id: str = ""
    source_id: str = ""
