"""render_post renders every field in one pass: same result as field by field, whatever the payload holds."""

from __future__ import annotations

import time
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


BOMBS = {
    "string repeat": "{{ 'a' * 100000000 }}",
    "list repeat": "{{ range(100000) | list * 1000 }}",
    "power": "{{ 2 ** 99999999 }}",
    "nested loops, output": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "nested loops, silent": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "doubling through a namespace": "{% set ns = namespace(s='ab') %}"
    "{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "doubling in one expression": "{% set s = 'abcdefghij' * 1000 %}" + "{% set s = s ~ s ~ s ~ s ~ s ~ s %}" * 12,
    "replace growth": "{{ 'a' * 1000 | replace('a', 'b' * 100000) }}",
    "printf width": "{{ '%999999999s' % 'x' }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "center width": "{{ 'x' | center(999999999) }}",
    "ljust width": "{{ 'x'.ljust(999999999) }}",
    "list mutation": "{{ [1, 2].append(3) }}",
    "big integers": "{% set a = 10 ** 256 %}" + "{% set a = a * a %}" * 18 + "{{ a }}",
    "silent nested loops": "{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
    "quadratic encode": "{{ ('\u4e00' * 100000).encode('punycode') }}",
    "expandtabs": "{{ ('\t' * 100).expandtabs(15000000) }}",
    "join separator": "{{ ('y' * 15000000).join('x' * 100) }}",
    "replace method": "{{ ('x' * 100).replace('x', 'y' * 15000000) }}",
    "repeated format widths": "{{ ('{0:9999999}' * 100).format(1) }}",
    "nested format width": "{{ ('{0:{1}}' * 100).format(1, 15000000) }}",
    "star printf width": "{{ ('%*s' * 2) % (15000000, '', 15000000, '') }}",
    "indent width": "{{ ('a\n' * 100) | indent(15000000) }}",
    "indent string": "{{ ('a\n' * 100) | indent('x' * 15000000) }}",
    "keyword width": "{{ 'x' | center(width=250000000) }}",
    "sort a huge list": "{{ ([0] * 16000000) | sort }}",
    "slices": "{{ [1] | slice(15000000) | list }}",
    "quadratic sum": "{{ ([[0] * 1000] * 16000) | sum(start=[]) }}",
    "many big values": "{{ range(30) | map('string') | map('center', 15000000) | list }}",
    "lipsum": "{{ lipsum(n=200000) }}",
    "recursive loop": "{% for x in [[1], [2]] recursive %}{{ loop(x) if x is iterable }}{% endfor %}",
    "costly filters in a loop": "{% set l = range(100000) | list %}{% for i in range(1000) %}"
    "{{ l | select('odd') | list | length }}{% endfor %}",
    "folding at compile time": "{{ 'x' | center(15000000) | wordwrap(3) | truncate(5) }}",
    "round precision": "{{ 1 | round(-100000000) }}",
    "dict from pairs": "{{ dict([[1, 2]] * 1000) }}",
    "big integer division": "{% set x = ('f' * 1000000) | int(0, 16) %}{{ x // 7 }}",
    "many slices": "{% set s = 'x' * 15000000 %}{% set ns = namespace(l=[]) %}"
    "{% for i in range(100) %}{% set ns.l = ns.l + [s[i:]] %}{% endfor %}{{ ns.l | length }}",
    "tojson indent": "{{ [1] | tojson(100000) }}",
    "printf length modifier": "{{ '%999999999ls' % 'a' }}",
    "newline fill": "{{ '{:\n>999999999}'.format('a') }}",
    "join separator filter": "{{ range(60) | join('x' * 16000000) }}",
    "tests in a filter": "{{ ('b' * 10000) | select('in', 'a' * 16000000) | list | length }}",
}

LEGITIMATE = {  # what real mappings write must not be taken for a bomb
    "{{ 'order 12345678 shipped'.splitlines() | first }}": "order 12345678 shipped",
    "{{ '{:,}'.format(25000000) }}": "25,000,000",
    "{{ '%d' | format(1732780800) }}": "1732780800",
    "{{ '{} (id {})'.format('Bug', 2345678901) }}": "Bug (id 2345678901)",
    "{{ 'refs/tags/release-20261128'.split('/') | last }}": "release-20261128",
    "{{ 'x' | center(5) }}|": "  x  |",
    "{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}": "1/3 2/3 3/3 ",
    "{% for k, v in {'a': 1} | dictsort %}{{ k }}={{ v }}{% endfor %}": "a=1",
    """{{ '{"a": {"b": "%s"}}' % 'x' }}""": '{"a": {"b": "x"}}',
    """{{ '{{"text": "{}"}}'.format('x') }}""": '{"text": "x"}',
    """{{ '{"text": "%s", "id": 123456789012}' % 'x' }}""": '{"text": "x", "id": 123456789012}',
    "{{ '%.2f' | format(3.14159) }} {{ '{:>6.1f}'.format(2.5) }}": "3.14    2.5",
    "{{ {'b': 1, 'a': [1, 2]} | json_excerpt(12) }}": '{\n  "a": [\n …',  # sorted, cut at 12, marked
    "{{ 'abcdef'[1:4] }} {{ [1, 2, 3, 4][::2] }} {{ {'a': '<b>'} | tojson }}": 'bcd [1, 3] {"a": "\\u003cb\\u003e"}',
    "{{ 1.05 ** 365 > 1 }} {{ 'abc'.isprintable() }} {{ 3.14159 | round(2) }}": "True True 3.14",
}


@pytest.mark.parametrize(("template", "expected"), list(LEGITIMATE.items()))
def test_legitimate_templates_render(template: str, expected: str) -> None:
    assert render_text(template, _context({})) == expected


@pytest.mark.parametrize("template", list(BOMBS.values()), ids=list(BOMBS))
def test_a_hostile_template_fails_fast_instead_of_hanging_or_filling_memory(template: str) -> None:
    started = time.perf_counter()
    with pytest.raises(MappingError):
        render_text(template, _context({}))
    assert time.perf_counter() - started < 2.0


def test_no_escape_from_the_sandbox() -> None:
    assert render_text("{{ payload.__class__.__mro__ }}{{ ''.__class__ }}", _context({})) == ""


def test_large_payload_values_still_render() -> None:
    """The budgets bound what a template builds, not what the provider sent."""
    big = "x" * 3_000_000
    assert render_text("{{ payload.body | upper | length }}", _context({"body": big})) == "3000000"
    assert len(render_text("{{ payload.body }}", _context({"body": big}))) == 40_000  # a field is capped


def test_fields_that_clash_only_together_render_one_by_one() -> None:
    spec = parse_inline({"post": {"title": "{% block b %}T{% endblock %}", "body": "{% block b %}B{% endblock %}"}})
    post = render_post(spec, _context({}))
    assert (post.title, post.body) == ("T", "B")


@pytest.mark.parametrize(
    "source",
    [
        "{{ payload.issue.title }}",
        "{{ payload.missing }}|{{ payload.issue.missing }}",
        "{{ payload['values'] | join(',') }}",
        "{{ payload.values is callable }}",  # a dict method, not the key of the same name
        "{{ payload.get('issue').title }}",
        "{{ payload.issue.labels | map(attribute='name') | join(',') }}",
    ],
)
def test_attribute_lookups_on_dicts_render_as_jinjas_own_sandbox_does(source: str) -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    payload = {"issue": {"title": "Bug", "labels": [{"name": "a"}, {"name": "b"}]}, "values": [1, 2]}
    expected = ImmutableSandboxedEnvironment().from_string(source).render(payload=payload)
    assert render_text(source, {"payload": payload}) == expected
