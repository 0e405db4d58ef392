"""render_post renders every field in one pass: same result as field by field, whatever the payload holds."""

from __future__ import annotations

from typing import Any

import pytest

from hub.mapping.catalogue import parse_inline
from hub.mapping.render import MappingError, render_post, render_text

MAPPING = parse_inline(
    {
        "post": {
            "title": "{{ payload.title }}",
            "body": "{%- for c in payload.lines -%} * {{ c }}\n{%- endfor -%}",
            "link": "{{ payload.url }}",
            "thread_key": "",
            "author": {"name": "{{ payload.user }}", "url": "", "avatar": "{{ payload.avatar }}"},
            "fields": {"Empty": "{{ payload.nothing }}", "Count": "{{ payload.lines | length }}"},
            "audience": ["{{ payload.user }}", ""],
        }
    }
)


def _context(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "payload": payload,
        "event": {"id": "evt_1", "type": "x", "source_id": "src_1", "connector": "acme", "subject": "deal-7"},
    }


def _field_by_field(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = _context(payload)
    t = MAPPING.post
    assert t.author is not None
    return {
        "title": render_text(t.title, ctx).strip(),
        "body": render_text(t.body, ctx).strip(),
        "author": render_text(t.author.name, ctx).strip(),
        "count": render_text(t.fields["Count"], ctx).strip(),
    }


@pytest.mark.parametrize(
    ("title", "lines"),
    [
        ("Plain", ["a", "b", "c"]),  # the one-pass path
        ("trailing  \n", ["a"]),
        ("{{ not a template }}", []),
        ("with \u241e the separator", ["a"]),  # the event's text holds the separator: field by field
        ("Plain", ["a", "b\u241e", "c"]),
    ],
)
def test_one_pass_equals_field_by_field(title: str, lines: list[str]) -> None:
    payload = {"title": title, "lines": lines, "url": "https://x/1", "user": "ann", "avatar": ""}
    post = render_post(MAPPING, _context(payload))
    expected = _field_by_field(payload)
    assert post.title == expected["title"]
    assert post.body == expected["body"]
    assert post.author is not None and post.author.name == "ann" and post.author.avatar is None
    assert [(f.name, f.value) for f in post.fields] == [("Count", expected["count"])]  # empty fields dropped
    assert post.audience == ["ann"]
    assert post.thread_key == "acme:deal-7"  # no template: the connector-qualified subject
    assert post.link == "https://x/1"


def test_a_failing_field_fails_the_post() -> None:
    bad = parse_inline({"post": {"title": "ok", "body": "{{ payload.n / 0 }}"}})
    with pytest.raises(MappingError, match="ZeroDivisionError"):
        render_post(bad, _context({"n": 1}))
