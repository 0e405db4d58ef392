"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"): an
Adaptive Card.

Documented in MicrosoftDocs/msteams-docs and the template's expected payload (providers.md B3, §0.4):
``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <AdaptiveCard>}]}``, cards up to version 1.5, ``Action.Submit`` does not work through a
webhook (only ``Action.OpenUrl`` here). TextBlocks read a Markdown subset (bold, italic, links, lists).
Teams cannot thread a webhook's posts: a later post of an object links the first when its link is known.
"""

from __future__ import annotations

from typing import Any

from hub.mapping.post import Mention, Post
from hub.targets.base import Manifest, OutboundRequest, SecretUrl, SendInfo, Target, TargetConfig
from hub.targets.text import byte_len, fit, follow_up_of, more_markdown

CARD_VERSION = "1.4"
LIMIT = 20_000  # bytes of body text: Teams refuses messages over about 28 KB [UNVERIFIED for Workflows]


class TeamsConfig(TargetConfig):
    url: SecretUrl  # …logic.azure.com/… or …api.powerplatform.com/… with sig=…: the URL is the secret


def card(post: Post, first_url: str | None) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": post.title, "weight": "Bolder", "size": "Medium", "wrap": True},
    ]
    if post.body:
        text = fit(post.body, LIMIT, more_markdown(post.link), byte_len)
        body.append({"type": "TextBlock", "text": text, "wrap": True})
    if post.fields:
        body.append({"type": "FactSet", "facts": [{"title": f.name, "value": f.value} for f in post.fields]})
    if post.author:
        body.append({"type": "TextBlock", "text": post.author.name, "isSubtle": True, "size": "Small", "wrap": True})
    if follow := follow_up_of(first_url):
        body.append({"type": "TextBlock", "text": follow, "isSubtle": True, "wrap": True})
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if post.link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": post.link}]
    entities = [entity for m in post.mentions if (entity := mention_entity(m)) is not None]
    if entities:  # "Mention support within Adaptive Cards": each <at>…</at> has its entity
        content["msteams"] = {"entities": entities}
    return content


def teams_user(person: Mention) -> str | None:
    """The Entra object id (or the user principal name, usually the email) Teams mentions by."""
    return person.identities.get("teams") or person.identities.get("email")


def mention_entity(person: Mention) -> dict[str, Any] | None:
    user = teams_user(person)
    if not user:
        return None
    return {"type": "mention", "text": f"<at>{person.name}</at>", "mentioned": {"id": user, "name": person.name}}


class TeamsTarget(Target):
    kind = "teams"
    Config = TeamsConfig
    manifest = Manifest(
        title="Microsoft Teams (Workflows webhook)",
        description="An Adaptive Card (1.4) posted by a Teams Workflows webhook; no threads (later posts of "
        "an object link the first when its link is known).",
        profile="incoming-webhook",
        threading="none",
        body_limit=LIMIT,
        limit_unit="bytes",
        example={
            "url": "https://default0000.00.environment.api.powerplatform.com/powerautomate/automations/direct/"
            "workflows/<id>/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=<sig>"
        },
        docs="https://learn.microsoft.com/en-us/connectors/teams/?tabs=text1%2Cdotnet#microsoft-teams-webhook",
    )

    def mention(self, person: Mention) -> str | None:
        """``<at>Name</at>`` in the text, matched by an entity in the card's ``msteams.entities``."""
        return f"<at>{person.name}</at>" if teams_user(person) else None

    def build_request(self, post: Post, config: TeamsConfig, info: SendInfo) -> OutboundRequest:
        first_url = info.anchor.remote_url if info.anchor else None
        attachment = {
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": card(post, first_url),
        }
        body = {"type": "message", "attachments": [attachment]}
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": info.idempotency_key}, body)
