"""Every target mentions a person in its own syntax, as its documentation writes a mention, and writes the
name where it knows no identity of that person — never an opaque id, never a half placeholder."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.mapping.post import Mention, Post, PostField
from hub.targets.base import SendInfo
from hub.targets.registry import TARGETS
from tests.conformance.test_targets import HTTP_KINDS, NOW, config_for

MARIE = Mention(
    id="per_marie",
    name="Marie Dupont",
    identities={
        "slack": "U024BE7LH",
        "discord": "80351110224678912",
        "mattermost": "marie.dupont",
        "rocketchat": "mdupont",
        "zulip": "42",
        "google_chat": "users/112233445566778899",
        "teams": "29:1a2b3c-4d5e",
        "viva_engage": "1519447",
        "email": "marie@acme.example",
    },
)
NOBODY = Mention(id="per_paul", name="Paul Martin", identities={"jira": "5b10ac8d82e05b22cc7d4ef5"})
TOKEN_MARIE = "[@Marie Dupont](mention:per_marie)"
TOKEN_PAUL = "[@Paul Martin](mention:per_paul)"


def post_with(*people: Mention) -> Post:
    tokens = {"per_marie": TOKEN_MARIE, "per_paul": TOKEN_PAUL}
    said = " and ".join(tokens[p.id] for p in people)
    return Post(
        title="Deal moved to Negotiation",
        body=f"Assigned to {said}.",
        fields=[PostField(name="Owner", value=said)],
        mentions=list(people),
        link="https://crm.example/deals/1",
        thread_key="hubspot:deal:1",
    )


def sent_text(kind: str, post: Post) -> str:
    target = TARGETS[kind]
    request = target.request_for(post, config_for(kind), SendInfo("dlv_x", None, NOW))
    body = request.form if request.form is not None else request.json
    return json.dumps(body, ensure_ascii=False)


# each as the target's documentation writes a user mention
SYNTAX: dict[str, str] = {
    "slack": "<@U024BE7LH>",  # api.slack.com/reference/surfaces/formatting#mentioning-users
    "slack-api": "<@U024BE7LH>",
    "discord": "<@80351110224678912>",  # discord.com/developers/docs/reference#message-formatting
    "mattermost": "@marie.dupont",  # docs.mattermost.com: mention with @username
    "rocketchat": "@mdupont",
    "zulip": "@**Marie Dupont|42**",  # zulip.com/help/mention-a-user-or-group (with the user id)
    "google-chat": "<users/112233445566778899>",  # developers.google.com/workspace/chat/format-messages
    "teams": "<at>Marie Dupont</at>",  # learn.microsoft.com: mention support within Adaptive Cards
    "viva-engage": "[[user:1519447]]",
}
NAME_ONLY = {"talkspirit"}  # no documented mention syntax: the name
TOKENS_KEPT = {"webhook", "inbox"}  # the canonical Post for in-house receivers


def test_every_kind_is_covered() -> None:
    assert set(TARGETS) == set(SYNTAX) | NAME_ONLY | TOKENS_KEPT


@pytest.mark.parametrize("kind", sorted(SYNTAX))
def test_a_known_person_is_mentioned_in_the_targets_syntax(kind: str) -> None:
    text = sent_text(kind, post_with(MARIE))
    assert SYNTAX[kind] in text or SYNTAX[kind].replace("<", "\\u003c") in text
    assert "mention:per_" not in text and "\ue000" not in text and "\ue001" not in text


@pytest.mark.parametrize("kind", sorted(k for k in HTTP_KINDS if k not in TOKENS_KEPT))
def test_a_person_without_an_identity_there_is_named_never_an_id(kind: str) -> None:
    text = sent_text(kind, post_with(NOBODY))
    assert "Paul Martin" in text
    assert "5b10ac8d82e05b22cc7d4ef5" not in text and "per_paul" not in text and "mention:" not in text


def test_slack_does_not_escape_its_own_mention_but_escapes_event_text() -> None:
    post = post_with(MARIE)
    post.body += " <!channel> & co"
    request = TARGETS["slack"].request_for(post, config_for("slack"), SendInfo("dlv_x", None, NOW))
    assert "Assigned to <@U024BE7LH>. &lt;!channel&gt; &amp; co" in request.json["text"]


def test_teams_cards_carry_an_entity_per_mention() -> None:
    request = TARGETS["teams"].request_for(post_with(MARIE, NOBODY), config_for("teams"), SendInfo("dlv_x", None, NOW))
    card: dict[str, Any] = request.json["attachments"][0]["content"]
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>Marie Dupont</at>",
            "mentioned": {"id": "29:1a2b3c-4d5e", "name": "Marie Dupont"},
        }
    ]
    assert "<at>Paul Martin</at>" not in json.dumps(card)  # no identity in Teams: the name, no dangling <at>


def test_a_mention_cut_by_a_limit_leaves_no_half_placeholder() -> None:
    post = post_with(MARIE)
    post.body = "x" * 1995 + TOKEN_MARIE  # Discord's embed description holds 4,096; its content 2,000
    text = sent_text("discord", post)
    assert "\ue000" not in text and "\ue002" not in text


def test_webhook_and_inbox_keep_the_tokens_and_the_mentions_list() -> None:
    request = TARGETS["webhook"].request_for(post_with(MARIE), config_for("webhook"), SendInfo("dlv_x", None, NOW))
    post = request.json["post"]
    assert TOKEN_MARIE in post["body"] and post["mentions"][0]["identities"]["slack"] == "U024BE7LH"


# --- direct messages ---------------------------------------------------------------------------------------


def direct_request(kind: str, post: Post) -> Any:
    target = TARGETS[kind]
    info = SendInfo("dlv_x", None, NOW, None, target.direct_person(post))
    return target.request_for(post, config_for(kind), info)


def test_slack_api_sends_a_direct_message_to_the_users_id() -> None:
    # api.slack.com/methods/chat.postMessage: channel may be a user id (the app's DM with that user)
    body = direct_request("slack-api", post_with(MARIE)).json
    assert body["channel"] == "U024BE7LH" and "thread_ts" not in body


def test_zulip_sends_a_direct_message() -> None:
    # zulip.com/api/send-message: type "direct", `to` a JSON list of user ids
    form = direct_request("zulip", post_with(MARIE)).form
    assert (form["type"], form["to"]) == ("direct", "[42]") and "topic" not in form


def test_viva_engage_sends_a_private_message() -> None:
    # Yammer messages.json: direct_to_user_ids makes a private message (no group)
    form = direct_request("viva-engage", post_with(MARIE)).form
    assert form["direct_to_user_ids"] == "1519447" and "group_id" not in form


@pytest.mark.parametrize("kind", ["slack-api", "zulip", "viva-engage"])
def test_without_an_identity_there_the_post_goes_to_the_channel(kind: str) -> None:
    assert TARGETS[kind].direct_person(post_with(NOBODY)) is None
    assert direct_request(kind, post_with(NOBODY)) == direct_request(kind, post_with(NOBODY))
    payload = direct_request(kind, post_with(NOBODY))
    sent = payload.form if payload.form is not None else payload.json
    assert sent.get("type", "stream") == "stream" and sent.get("channel", "C") != "U024BE7LH"


@pytest.mark.parametrize("kind", sorted(k for k in TARGETS if k not in ("slack-api", "zulip", "viva-engage")))
def test_targets_that_cannot_message_people_never_try(kind: str) -> None:
    assert TARGETS[kind].direct_person(post_with(MARIE)) is None
