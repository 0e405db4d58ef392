"""Signing and request helpers shared by the API tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

ADMIN_KEY = "test-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
GITHUB_SECRET = "It's a Secret to Everybody"


def github_issue(number: int, action: str = "opened", repo: str = "octocat/Hello-World") -> dict[str, Any]:
    return {
        "action": action,
        "issue": {
            "number": number,
            "title": f"Found a bug #{number}",
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "body": "I'm having a problem with this.",
            "state": "open",
            "labels": [{"name": "bug"}],
        },
        "repository": {"full_name": repo, "html_url": f"https://github.com/{repo}"},
        "sender": {
            "login": "octocat",
            "html_url": "https://github.com/octocat",
            "avatar_url": "https://github.com/images/error/octocat_happy.gif",
        },
    }


def github_request(
    payload: Any, event: str = "issues", delivery: str | None = None, secret: str = GITHUB_SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={sig}",
        "Content-Type": "application/json",
    }
