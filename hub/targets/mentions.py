"""Mentions in a target's own syntax. A post's text carries ``[@Name](mention:per_…)`` tokens
(hub/people/directory.py); a target says how it mentions a person it knows (``Target.mention``), and
the name is written where it knows no identity of that person — never an opaque id.

A mention is held as a placeholder of the same length while the target converts and cuts its text, so
no dialect escapes it (Slack's ``<@U…>`` would become ``&lt;@U…&gt;``) and a limit is not overrun; the
placeholders are then released into the built request. A placeholder a cut left half is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hub.mapping.post import Mention, Post, PostField
from hub.people.directory import TOKEN

_OPEN, _CLOSE, _FILL = "\ue000", "\ue001", "\ue002"
_HELD = re.compile(f"{_OPEN}(\\d+){_FILL}*{_CLOSE}")
_HALF = re.compile(f"{_OPEN}[\\d{_FILL}]*")

Render = Callable[[Mention], str | None]


def hold(post: Post, render: Render) -> tuple[Post, list[str]]:
    """The post with each mention replaced: a placeholder where the target mentions the person, else
    the name; and the target's mentions, by placeholder number."""
    people = {m.id: m for m in post.mentions}
    held: list[str] = []

    def one(match: re.Match[str]) -> str:
        person = people.get(match.group(2))
        syntax = render(person) if person is not None else None
        if not syntax:
            return person.name if person is not None else match.group(1)
        number = str(len(held))
        held.append(syntax)
        return _OPEN + number + _FILL * max(len(syntax) - len(number) - 2, 0) + _CLOSE

    def text(value: str) -> str:
        return TOKEN.sub(one, value) if "](mention:" in value else value

    fields = [PostField(name=f.name, value=text(f.value)) for f in post.fields]
    return post.model_copy(update={"title": text(post.title), "body": text(post.body), "fields": fields}), held


def release(value: Any, held: list[str]) -> Any:
    """Every string of a request body with its placeholders replaced by the target's mentions."""
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        return _HALF.sub("", _HELD.sub(lambda m: held[int(m.group(1))], value))
    if isinstance(value, list):
        return [release(v, held) for v in value]
    if isinstance(value, dict):
        return {k: release(v, held) for k, v in value.items()}
    return value


def has_mentions(post: Post) -> bool:
    return any("](mention:" in text for text in (post.title, post.body, *(f.value for f in post.fields)))


def released(request: Any, held: list[str]) -> Any:
    """An OutboundRequest with its JSON body or form released."""
    if not held:
        return request
    return replace(request, json=release(request.json, held), form=release(request.form, held))
