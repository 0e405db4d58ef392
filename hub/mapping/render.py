"""Render a mapping in Jinja2's sandbox: pure, the context passed in, failures as MappingError."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError

from hub.mapping.budget import RenderTimeout
from hub.mapping.post import Author, Post, PostField
from hub.mapping.sandbox import BoundedSandbox, BudgetExceeded, render_bounded
from hub.mapping.spec import MappingSpec

MAX_FIELD_CHARS = 40_000
_FALSEY = {"", "false", "0", "no", "none", "null"}


class MappingError(Exception):
    """A mapping failed to render; the delivery fails with this cause, nothing crashes."""


class MappingOverBudget(MappingError):
    """A template went over its time or size budget: not worth a second try in the same delivery."""


class MappingTimedOut(MappingOverBudget):
    """Over the time budget, which a busy machine can cause too: the delivery is tried again later."""


def _finalize(value: Any) -> Any:
    return "" if value is None else value


_env = BoundedSandbox(undefined=ChainableUndefined, finalize=_finalize, autoescape=False, keep_trailing_newline=False)


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


def _render(source: str, context: dict[str, Any]) -> str:
    if "{" not in source:
        return source
    try:
        return render_bounded(_compile(source), context)
    except MappingError:
        raise
    except RenderTimeout as exc:
        raise MappingTimedOut(f"BudgetExceeded: {exc}") from None
    except BudgetExceeded as exc:
        raise MappingOverBudget(f"BudgetExceeded: {exc}") from None
    except Exception as exc:  # the sandbox raises SecurityError, TypeError, …: all are mapping failures
        raise MappingError(f"{type(exc).__name__}: {exc}") from None


def render_text(source: str, context: dict[str, Any]) -> str:
    return _render(source, context)[:MAX_FIELD_CHARS] if source else ""


def applies(spec: MappingSpec, context: dict[str, Any]) -> bool:
    if not spec.when:
        return True
    return render_text(spec.when, context).strip().lower() not in _FALSEY


_SEP = "\u241e"  # SYMBOL FOR RECORD SEPARATOR: not whitespace, so "-%}" trimming cannot eat it


def render_all(sources: tuple[str, ...], context: dict[str, Any]) -> list[str]:
    """Render several templates with one Jinja context (the costly part), in one pass."""
    if _SEP in "".join(sources):
        return [render_text(src, context) for src in sources]
    try:
        parts = _render(_SEP.join(sources), context).split(_SEP)
    except MappingOverBudget:
        raise
    except MappingError:  # fields that only clash together ({% block %} twice…): each on its own
        return [render_text(src, context) for src in sources]
    if len(parts) != len(sources):  # the event's own text held the separator: render one by one
        return [render_text(src, context) for src in sources]
    return [part[:MAX_FIELD_CHARS] for part in parts]


def render_post(spec: MappingSpec, context: dict[str, Any]) -> Post:
    """The Post for one event. ``context`` holds ``payload`` and ``event``."""
    t = spec.post
    author_t = t.author
    names = list(t.fields)
    sources = (
        t.title,
        t.body,
        t.link,
        t.thread_key,
        author_t.name if author_t else "",
        author_t.url if author_t else "",
        author_t.avatar if author_t else "",
        *t.fields.values(),
        *t.audience,
    )
    title, body, link, thread, a_name, a_url, a_avatar, *rest = (x.strip() for x in render_all(sources, context))
    if not title:
        raise MappingError("the title rendered empty")
    author = Author(name=a_name, url=a_url or None, avatar=a_avatar or None) if a_name else None
    values, audience = rest[: len(names)], rest[len(names) :]
    fields = [PostField(name=name, value=value) for name, value in zip(names, values, strict=True) if value]
    event = context.get("event", {})
    subject = event.get("subject")
    default_thread = f"{event.get('connector')}:{subject}" if subject else None  # as the built-in mappings write it
    return Post(
        title=title.splitlines()[0][:500],
        body=body,
        link=link or None,
        author=author,
        thread_key=thread or default_thread,
        fields=fields,
        audience=[a for a in audience if a],
        event_type=str(event.get("type", "")),
        event_id=str(event.get("id", "")),
        source_id=str(event.get("source_id", "")),
    )
