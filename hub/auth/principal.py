"""The caller of an operation, as the audit trail names it."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["api_key", "oidc", "cli", "system"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key (id, name), an OIDC user (subject, email) or a local command."""

    kind: PrincipalKind
    id: str
    name: str
    scope: str  # "admin" | "read"

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def command_line() -> Principal:
    """Whoever runs a `hub` command on the server (they hold the database settings)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid, e.g. in a container
        user = "unknown"
    return Principal("cli", f"cli:{user}", user, "admin")


SYSTEM = Principal("system", "system", "hub", "admin")
