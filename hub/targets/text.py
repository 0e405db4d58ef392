"""The Post's Markdown in each target's dialect, and cutting text to a target's limit with a link to
the rest. Pure functions: the targets compose them."""

from __future__ import annotations

import re
from collections.abc import Callable

from hub.mapping.post import Post

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
# mass mentions in Slack-like chats (@channel, @here, @all, @everyone) and Zulip's @**all**
_MASS_MENTION = re.compile(r"@(?=\**(?:all|everyone|here|channel|stream|topic)\b)", re.IGNORECASE)
ZWSP = "\u200b"

Measure = Callable[[str], int]


def byte_len(text: str) -> int:
    return len(text.encode("utf-8"))


def markdown_of(post: Post, follow_up: str | None = None, title: bool = True) -> str:
    """The whole post as Markdown: linked bold title, body, fields, and the link to the thread's first
    post on a target that cannot thread."""
    parts = []
    if title:
        parts.append(f"**[{post.title}]({post.link})**" if post.link else f"**{post.title}**")
    if post.body:
        parts.append(post.body)
    if post.fields:
        parts.append(" · ".join(f"**{f.name}:** {f.value}" for f in post.fields))
    if follow_up:
        parts.append(follow_up)
    return "\n\n".join(parts)


def follow_up_of(first_url: str | None) -> str | None:
    """A later post of a business object, on a target without threads: a link to the first one."""
    return f"↪ Follow-up of [the first post]({first_url})" if first_url else None


def slack_escape(text: str) -> str:
    """Slack's control characters: without this, event text saying <!channel> pings a whole channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn: ``<url|text>`` links and ``*bold*``; the event's own text escaped first."""
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", slack_escape(markdown))
    return _BOLD.sub(r"*\1*", text)


def to_google_chat(markdown: str) -> str:
    """Google Chat's text syntax (``*bold*``, ``<url|text>``). Chat has no escape for ``<``: a zero-width
    space after it keeps ``<users/all>`` in event text from mentioning everyone."""
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", markdown.replace("<", "<" + ZWSP))
    return _BOLD.sub(r"*\1*", text)


def quiet_mentions(markdown: str) -> str:
    """Markdown chats (Mattermost, Rocket.Chat, Discord, Zulip): event text cannot ping a whole channel."""
    return _MASS_MENTION.sub("@" + ZWSP, markdown)


def to_plain(markdown: str) -> str:
    """Plain text for targets without markup (Viva Engage): ``text (url)``, no bold markers."""
    return _BOLD.sub(r"\1", _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", markdown))


def fit(text: str, limit: int, more: str = "…", measure: Measure = len) -> str:
    """``text`` within ``limit`` (as ``measure`` counts: characters or UTF-8 bytes); when cut, it ends
    with ``more`` (an ellipsis and a link to the whole object), preferably at a line or word break."""
    if measure(text) <= limit:
        return text
    room = max(limit - measure(more), 0)
    lo, hi = 0, min(len(text), room)  # the longest prefix that fits, found by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= room:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    for sep in ("\n", " "):
        at = cut.rfind(sep)
        if at >= lo * 0.8:  # a break near the end: cut there rather than mid-word
            cut = cut[:at]
            break
    return cut.rstrip() + more


def more_markdown(link: str | None) -> str:
    return f"… [more]({link})" if link else "…"
