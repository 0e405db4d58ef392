"""Render a mapping in Jinja2's sandbox: pure, the context passed in, failures as MappingError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError

from hub.mapping.budget import RenderTimeout
from hub.mapping.post import Author, Post, PostField
from hub.mapping.sandbox import BoundedSandbox, BudgetExceeded, render_bounded
from hub.mapping.spec import MappingSpec
from hub.people.directory import Directory, mentions_of

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


_missing: ContextVar[list[str] | None] = ContextVar("hub_missing_fields", default=None)


class _Missing(ChainableUndefined):
    """A field the event does not have: renders empty (``payload.a.b.c`` chains), and when a preview
    listens, says which name was missing."""

    __slots__ = ()

    def __str__(self) -> str:
        heard = _missing.get()
        if heard is not None and self._undefined_name is not None:
            heard.append(str(self._undefined_name))
        return ""


@contextmanager
def listening_for_missing() -> Iterator[list[str]]:
    """Within the block, every missing field that renders (empty) is named in the yielded list."""
    heard: list[str] = []
    token = _missing.set(heard)
    try:
        yield heard
    finally:
        _missing.reset(token)


_env = BoundedSandbox(undefined=_Missing, finalize=_finalize, autoescape=False, keep_trailing_newline=False)


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
    """The Post for one event. ``context`` holds ``payload`` and ``event`` (hub/mapping/context.py), and
    ``mention``: the people its text mentions are listed in ``Post.mentions``."""
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
    post = Post(
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
    directory = getattr(context.get("mention"), "__self__", None)  # the Directory whose mention() it is
    if isinstance(directory, Directory) and any(
        "](mention:" in text for text in (post.title, post.body, *(f.value for f in post.fields))
    ):
        post.mentions = mentions_of(post, directory)
    return post


def missing_fields(spec: MappingSpec, context: dict[str, Any]) -> list[str]:
    """Warnings for a preview: each Post field whose template used a field the event lacks (it rendered
    empty there), e.g. ``title: 'number' is missing``. A ``default`` or ``or`` fallback is not reported."""
    t = spec.post
    fields = {"title": t.title, "body": t.body, "link": t.link, "thread_key": t.thread_key}
    if t.author:
        fields.update({"author.name": t.author.name, "author.url": t.author.url, "author.avatar": t.author.avatar})
    fields.update({f"fields.{name}": src for name, src in t.fields.items()})
    warnings: list[str] = []
    for name, source in fields.items():
        if not source or "{" not in source:
            continue
        with listening_for_missing() as heard:
            try:
                render_text(source, context)
            except MappingError:
                continue  # reported as the render's own error
        for missing in dict.fromkeys(heard):
            warnings.append(f"{name}: {missing!r} is missing from the event, it rendered empty")
    return warnings
