"""The directory in memory (loaded by the config cache): who is who, and mentions in posts.

A mapping names a person by the identity its provider gives, ``{{ mention(payload.assignee.accountId,
'jira') }}``. The directory resolves it before anything is sent, without I/O: the result is a Markdown
token ``[@Marie Dupont](mention:per_…)`` that each target renders in its own syntax (Slack ``<@U…>``,
Discord ``<@id>``, Zulip ``@**Name**``…) or, where it knows no identity of that person, as the name.
An unknown identity renders as the fallback the mapping gives, else as the value when that is readable
(a login, an email), else as "someone": never a raw opaque id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from hub.mapping.post import Mention, Post

KINDS: dict[str, str] = {
    "email": "Email address",
    "github": "GitHub login",
    "gitlab": "GitLab username",
    "jira": "Jira (Atlassian) account id",
    "trello": "Trello member id",
    "hubspot": "HubSpot owner id",
    "salesforce": "Salesforce user id",
    "pipedrive": "Pipedrive user id",
    "asana": "Asana user gid",
    "linear": "Linear user id",
    "stripe": "Stripe user id",
    "box": "Box user id",
    "dropbox": "Dropbox account id",
    "microsoft": "Microsoft Entra object id (Graph, OneDrive, SharePoint)",
    "nextcloud": "Nextcloud user id",
    "slack": "Slack user id (U…)",
    "teams": "Teams / Entra object id",
    "google_chat": "Google Chat user (users/…)",
    "zulip": "Zulip full name or user id",
    "discord": "Discord user id",
    "mattermost": "Mattermost username",
    "rocketchat": "Rocket.Chat username",
    "talkspirit": "Talkspirit profile",
    "viva_engage": "Viva Engage (Yammer) user id",
}
READABLE = frozenset({"email", "github", "gitlab", "mattermost", "rocketchat", "nextcloud", "zulip"})
TOKEN = re.compile(r"\[@([^\]\n]{0,200})\]\(mention:(per_[A-Za-z0-9_]{1,60})\)")


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    return value.lower() if kind in ("email", "github", "gitlab") else value


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    identities: Mapping[str, str] = field(default_factory=dict)


class Directory:
    def __init__(self, people: Iterable[Person] = ()) -> None:
        self._by_id: dict[str, Person] = {}
        self._by_identity: dict[tuple[str, str], Person] = {}
        for person in people:
            self._by_id[person.id] = person
            for kind, value in person.identities.items():
                self._by_identity[(kind, normalise(kind, value))] = person

    def __len__(self) -> int:
        return len(self._by_id)

    def people(self) -> list[Person]:
        return list(self._by_id.values())

    def get(self, person_id: str) -> Person | None:
        return self._by_id.get(person_id)

    def find(self, kind: str, value: object) -> Person | None:
        if value is None or isinstance(value, dict | list):
            return None
        return self._by_identity.get((kind, normalise(kind, str(value))))

    def mention(self, value: object = None, kind: str = "email", fallback: object = None) -> str:
        """What a mapping writes for a person: a mention token, or a readable name (never a raw id)."""
        person = self.find(str(kind), value)
        if person is not None:
            name = person.name.replace("[", "(").replace("]", ")")
            return f"[@{name}](mention:{person.id})"
        if fallback not in (None, ""):
            return str(fallback)
        if str(kind) in READABLE and value not in (None, "") and not isinstance(value, dict | list):
            return str(value)
        return "someone"


def mentions_of(post: Post, directory: Directory) -> list[Mention]:
    """The people a post mentions, with their identities, for targets to render."""
    text = "\n".join([post.title, post.body, *(f.value for f in post.fields)])
    seen: dict[str, Mention] = {}
    for match in TOKEN.finditer(text):
        person = directory.get(match.group(2))
        if person is not None and person.id not in seen:
            seen[person.id] = Mention(id=person.id, name=person.name, identities=dict(person.identities))
    return list(seen.values())


def render_mentions(text: str, post: Post, render: Callable[[Mention], str | None]) -> str:
    """Replace each mention token with what ``render`` gives for the person (None: their name)."""
    people = {m.id: m for m in post.mentions}

    def one(match: re.Match[str]) -> str:
        person = people.get(match.group(2))
        if person is None:
            return match.group(1)
        return render(person) or person.name

    return TOKEN.sub(one, text)
