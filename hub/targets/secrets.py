"""Which settings of a target are secret, found on its config model: ``SecretStr`` fields and fields
marked ``Annotated[…, SECRET]`` (a secret URL), at any depth (``oauth2.client_secret``).

Secrets are stored encrypted apart from the plain settings, never returned by the API, and scrubbed
from errors and answer excerpts.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

Path = tuple[str, ...]


class SecretMarker:
    """Marks a field whose value is a secret although it is not a ``SecretStr`` (a URL with a token)."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = SecretMarker()


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation admits (``X | None`` → ``[X, NoneType]``)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


@functools.cache
def secret_paths(model: type[BaseModel], prefix: Path = ()) -> tuple[Path, ...]:
    """The paths of every secret field of ``model``, nested models included (computed once per model)."""
    out: list[Path] = []
    for name, info in model.model_fields.items():
        kinds = _unwrap(info.annotation)
        if SecretStr in kinds or any(isinstance(m, SecretMarker) for m in info.metadata):
            out.append((*prefix, name))
            continue
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                out += secret_paths(kind, (*prefix, name))
    return tuple(out)


def reveal(value: Any) -> Any:
    """A model dump (mode python) as plain JSON values, secrets in clear: for encrypted storage only."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return reveal(value.model_dump(exclude_none=True))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # URLs


def _pop(data: dict[str, Any], path: Path) -> Any:
    node: Any = data
    for key in path[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return None
    return node.pop(path[-1], None)


def _put(data: dict[str, Any], path: Path, value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def split(config: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain settings, secret settings), both nested JSON, from a validated config."""
    plain: dict[str, Any] = reveal(config)
    secrets: dict[str, Any] = {}
    for path in secret_paths(type(config)):
        value = _pop(plain, path)
        if value is not None:
            _put(secrets, path, value)
    return plain, secrets


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``base``, nested objects merged key by key; a ``None`` removes a setting."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _walk(value: Any, path: Path) -> Iterator[Any]:
    for key in path:
        value = getattr(value, key, None)
        if value is None:
            return
    yield value


def secret_values(config: BaseModel) -> list[str]:
    """Every secret string of a config, to scrub from whatever leaves hub."""
    out: list[str] = []
    for path in secret_paths(type(config)):
        for value in _walk(config, path):
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            if text:
                out.append(text)
    return out


def secret_names(secrets: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the secrets set (``oauth2.client_secret``), for the API."""
    out: list[str] = []
    for key, value in secrets.items():
        name = f"{prefix}{key}"
        out += secret_names(value, f"{name}.") if isinstance(value, dict) else [name]
    return sorted(out)
