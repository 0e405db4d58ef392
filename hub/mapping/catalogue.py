"""Find the mapping for a route: a named file, an inline mapping, or the connector's default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hub.mapping.render import MappingError, check
from hub.mapping.spec import MappingSpec
from hub.paths import builtin_dir

MappingRef = str | dict[str, Any] | None


class MappingCatalogue:
    """Mapping name (path under a mappings dir, without .yaml) → spec."""

    def __init__(self, specs: dict[str, MappingSpec] | None = None) -> None:
        self._specs: dict[str, MappingSpec] = dict(specs or {})

    @classmethod
    def from_dirs(cls, *dirs: Path | None) -> MappingCatalogue:
        cat = cls()
        for d in dirs:
            if d is None or not d.is_dir():
                continue
            for path in sorted(d.rglob("*.yaml")):
                name = path.relative_to(d).with_suffix("").as_posix()
                cat._specs[name] = load_mapping_file(path)
        return cat

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> MappingSpec | None:
        return self._specs.get(name)

    def default_for(self, connector: str, event_type: str) -> MappingSpec | None:
        base = event_type.split(".")[0]
        for name in (f"{connector}/{event_type}", f"{connector}/{base}", f"{connector}/_default", "_default"):
            spec = self._specs.get(name)
            if spec is not None:
                return spec
        return None

    def resolve(self, connector: str, event_type: str, ref: MappingRef) -> MappingSpec:
        """The mapping a route uses for one event; MappingError when there is none."""
        if ref is None:
            spec = self.default_for(connector, event_type)
            if spec is None:
                raise MappingError(f"no default mapping for {connector} event {event_type}")
            return spec
        if isinstance(ref, dict):
            return parse_inline(ref)
        found = self._specs.get(f"{connector}/{ref}") or self._specs.get(ref)
        if found is None:
            raise MappingError(f"no mapping named {ref!r}")
        return found


def parse_inline(data: dict[str, Any]) -> MappingSpec:
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise MappingError(f"invalid mapping: {exc}") from None
    check(spec)
    return spec


def load_mapping_file(path: Path) -> MappingSpec:
    try:
        return parse_inline(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, MappingError, UnicodeDecodeError, OSError) as exc:
        raise MappingError(f"{path}: {exc}") from None


def builtin_mappings(extra: Path | None = None) -> MappingCatalogue:
    return MappingCatalogue.from_dirs(builtin_dir("mappings"), extra)
