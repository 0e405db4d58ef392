"""Viva Engage (Yammer) REST API, as a user: one conversation per business object.

Documented at https://learn.microsoft.com/rest/api/yammer/messages-json-post and the API request and
rate-limit pages (providers.md B6, §0.4): ``POST {url}/messages.json`` with ``body``, ``group_id`` and
``replied_to_id`` (form-encoded, as documented), ``Authorization: Bearer`` with a delegated (user)
token: Viva Engage has no client-credentials flow, so the token is renewed with the user's refresh token
when ``oauth2`` is set. The answer lists the created message (``{"messages": [{"id": …}]}``): the first
one's id is the thread's anchor, later posts reply to it. Messages: 10 requests per 30 s per user, 429
beyond. Bodies are plain text.
"""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr

from hub.mapping.post import Mention, Post
from hub.targets.base import Answer, Manifest, OutboundRequest, SendInfo, SendResult, Target, TargetConfig, api_url
from hub.targets.oauth import OAuth2Bearer, OAuth2Refresh, refresh
from hub.targets.text import fit, markdown_of, to_plain

LIMIT = 10_000  # not documented [UNVERIFIED]: a cut so one huge event cannot be refused as a whole


class VivaEngageConfig(TargetConfig):
    url: AnyHttpUrl = Field(AnyHttpUrl("https://www.yammer.com/api/v1"), description="The REST API base.")
    group_id: int = Field(gt=0, description="The community (group) to post in.")
    token: SecretStr = Field(description="A user's delegated access token.")
    oauth2: OAuth2Refresh | None = Field(None, description="Renews the token with the user's refresh token.")


class VivaEngageTarget(Target):
    kind = "viva-engage"
    Config = VivaEngageConfig
    manifest = Manifest(
        title="Viva Engage (Yammer API)",
        description="A message in a community, posted as a user; later posts of a business object reply "
        "to the first (replied_to_id).",
        profile="api",
        threading="anchor",
        body_limit=LIMIT,
        example={
            "group_id": 123456789,
            "token": "<delegated access token>",
            "oauth2": {
                "token_url": "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token",
                "client_id": "<application id>",
                "client_secret": "<client secret>",
                "refresh_token": "<refresh token>",
            },
        },
        docs="https://learn.microsoft.com/rest/api/yammer/messages-json-post",
    )

    def mention(self, person: Mention) -> str | None:
        """Viva Engage (Yammer) references a user in a message body as ``[[user:<id>]]``."""
        user = person.identities.get("viva_engage")
        return f"[[user:{user}]]" if user and user.isdigit() else None

    direct_identity = "viva_engage"

    def build_request(self, post: Post, config: VivaEngageConfig, info: SendInfo) -> OutboundRequest:
        text = fit(to_plain(markdown_of(post)), LIMIT, f"… {post.link}" if post.link else "…")
        form = {"body": text, "group_id": str(config.group_id)}
        if info.direct_to:  # a private message to that user (messages.json: direct_to_user_ids)
            form = {"body": text, "direct_to_user_ids": info.direct_to.identities["viva_engage"]}
        elif info.anchor and info.anchor.remote_id:
            form["replied_to_id"] = info.anchor.remote_id
        headers = {"Idempotency-Key": info.idempotency_key}
        token = config.token.get_secret_value()
        if config.oauth2 is None:
            headers["Authorization"] = f"Bearer {token}"
            return OutboundRequest("POST", api_url(config.url, "/messages.json"), headers, form=form)
        auth = OAuth2Bearer(refresh(config.oauth2, token), info.tokens)
        return OutboundRequest("POST", api_url(config.url, "/messages.json"), headers, form=form, auth=auth)

    def read_answer(self, answer: Answer, config: VivaEngageConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        data = answer.json()
        messages = data.get("messages") if isinstance(data, dict) else None
        if result.outcome == "delivered" and isinstance(messages, list) and messages:
            first = messages[0] if isinstance(messages[0], dict) else {}
            if isinstance(first.get("id"), int | str):
                result.remote_id = str(first["id"])
            if isinstance(first.get("web_url"), str):
                result.remote_url = first["web_url"]
        return result
