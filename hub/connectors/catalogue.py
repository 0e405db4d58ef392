"""Load connector specs: the built-in ones, an extra directory, and custom ones stored over REST."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hub.connectors.spec import ConnectorSpec
from hub.paths import builtin_dir


class SpecError(Exception):
    """A spec file is invalid; the message names the file."""


def load_spec_file(path: Path) -> ConnectorSpec:
    try:
        data = yaml.safe_load(path.read_text())
        return ConnectorSpec.model_validate(data)
    except (yaml.YAMLError, ValidationError, UnicodeDecodeError, OSError) as exc:
        raise SpecError(f"{path}: {exc}") from None


class ConnectorCatalogue:
    """Connector id → spec."""

    def __init__(self, specs: Iterable[ConnectorSpec] = ()) -> None:
        self._specs: dict[str, ConnectorSpec] = {}
        for spec in specs:
            self.add(spec)

    @classmethod
    def from_dirs(cls, *dirs: Path | None) -> ConnectorCatalogue:
        cat = cls()
        for d in dirs:
            if d is None or not d.is_dir():
                continue
            for path in sorted(d.glob("*.yaml")):
                spec = load_spec_file(path)
                if spec.id != path.stem:
                    raise SpecError(f"{path}: id {spec.id!r} must equal the file name")
                cat.add(spec)
        return cat

    def add(self, spec: ConnectorSpec) -> None:
        self._specs[spec.id] = spec

    def add_custom(self, data: dict[str, Any]) -> ConnectorSpec:
        spec = ConnectorSpec.model_validate(data)
        self.add(spec)
        return spec

    def remove(self, connector_id: str) -> None:
        self._specs.pop(connector_id, None)

    def get(self, connector_id: str) -> ConnectorSpec | None:
        return self._specs.get(connector_id)

    def all(self) -> list[ConnectorSpec]:
        return [self._specs[k] for k in sorted(self._specs)]


def builtin_catalogue(extra: Path | None = None) -> ConnectorCatalogue:
    return ConnectorCatalogue.from_dirs(builtin_dir("connectors"), extra)
