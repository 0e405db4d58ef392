"""Render a mapping in Jinja2's sandbox: pure, the context passed in, failures as MappingError."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from hub.mapping.post import Author, Post, PostField
from hub.mapping.spec import MappingSpec

MAX_FIELD_CHARS = 40_000
_FALSEY = {"", "false", "0", "no", "none", "null"}


class MappingError(Exception):
    """A mapping failed to render; the delivery fails with this cause, nothing crashes."""


def _finalize(value: Any) -> Any:
    return "" if value is None else value


_env = SandboxedEnvironment(
    undefined=ChainableUndefined, finalize=_finalize, autoescape=False, keep_trailing_newline=False
)


@lru_cache(maxsize=4096)
def _compile(source: str) -> Any:
    try:
        return _env.from_string(source)
    except TemplateError as exc:
        raise MappingError(f"template does not compile: {exc}") from None


def check(spec: MappingSpec) -> None:
    """Compile every template of a mapping; raise MappingError on the first that does not."""
    sources = [
        spec.when,
        spec.post.title,
        spec.post.body,
        spec.post.link,
        spec.post.thread_key,
        *spec.post.fields.values(),
        *spec.post.audience,
    ]
    if spec.post.author:
        sources += [spec.post.author.name, spec.post.author.url, spec.post.author.avatar]
    for src in sources:
        if src:
            _compile(src)


def render_text(source: str, context: dict[str, Any]) -> str:
    if not source:
        return ""
    if "{" not in source:
        return source
    try:
        out = str(_compile(source).render(context))
    except MappingError:
        raise
    except Exception as exc:  # the sandbox raises SecurityError, TypeError, …: all are mapping failures
        raise MappingError(f"{type(exc).__name__}: {exc}") from None
    return out[:MAX_FIELD_CHARS]


def applies(spec: MappingSpec, context: dict[str, Any]) -> bool:
    if not spec.when:
        return True
    return render_text(spec.when, context).strip().lower() not in _FALSEY


def render_post(spec: MappingSpec, context: dict[str, Any]) -> Post:
    """The Post for one event. ``context`` holds ``payload`` and ``event``."""
    t = spec.post
    title = render_text(t.title, context).strip()
    if not title:
        raise MappingError("the title rendered empty")
    author = None
    if t.author:
        name = render_text(t.author.name, context).strip()
        if name:
            author = Author(
                name=name,
                url=render_text(t.author.url, context).strip() or None,
                avatar=render_text(t.author.avatar, context).strip() or None,
            )
    fields = []
    for name, src in t.fields.items():
        value = render_text(src, context).strip()
        if value:
            fields.append(PostField(name=name, value=value))
    event = context.get("event", {})
    subject = event.get("subject")
    default_thread = f"{event.get('connector')}:{subject}" if subject else None  # as the built-in mappings write it
    thread_key = render_text(t.thread_key, context).strip() or default_thread
    return Post(
        title=title.splitlines()[0][:500],
        body=render_text(t.body, context).strip(),
        link=render_text(t.link, context).strip() or None,
        author=author,
        thread_key=thread_key,
        fields=fields,
        audience=[a for a in (render_text(x, context).strip() for x in t.audience) if a],
        event_type=str(event.get("type", "")),
        event_id=str(event.get("id", "")),
        source_id=str(event.get("source_id", "")),
    )
