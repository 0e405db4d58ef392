"""Target kinds by name. Adding a target = one module + one line here."""

from __future__ import annotations

from hub.targets.base import Target
from hub.targets.inbox import InboxTarget
from hub.targets.slack import SlackTarget
from hub.targets.talkspirit import TalkspiritTarget
from hub.targets.webhook import WebhookTarget

TARGETS: dict[str, Target] = {t.kind: t for t in (WebhookTarget(), TalkspiritTarget(), SlackTarget(), InboxTarget())}


def get_target(kind: str) -> Target | None:
    return TARGETS.get(kind)
