"""Find the mapping for a route: a named file, an inline mapping, or the connector's default."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hub.mapping.render import MappingError, check
from hub.mapping.spec import MappingSpec
from hub.paths import builtin_dir

MappingRef = str | dict[str, Any] | None


class MappingCatalogue:
    """Built-in mappings (path under a mappings dir, without .yaml) and managed ones (written over the API,
    versioned, kept in the database and refreshed by the config cache) → spec."""

    def __init__(self, specs: dict[str, MappingSpec] | None = None) -> None:
        self._specs: dict[str, MappingSpec] = dict(specs or {})
        self._managed: dict[str, tuple[MappingSpec, int]] = {}
        self._defaults: dict[tuple[str, str], str | None] = {}
        self._inline_cache: dict[int, tuple[dict[str, Any], MappingSpec]] = {}

    def set_managed(self, managed: dict[str, tuple[MappingSpec, int]]) -> None:
        self._managed = dict(managed)

    def managed(self, name: str) -> tuple[MappingSpec, int] | None:
        return self._managed.get(name)

    def taken(self, name: str, connectors: list[str]) -> bool:
        """Whether a new managed mapping called ``name`` would shadow a built-in one a route can name."""
        return name in self._specs or any(f"{c}/{name}" in self._specs for c in connectors)

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
        name = self.default_name(connector, event_type)
        return None if name is None else self._specs[name]

    def default_name(self, connector: str, event_type: str) -> str | None:
        """The file named after the event type, else one of the connector's files that lists it in its
        ``events`` (exactly, then by a wildcard: event types that cannot be file names, like Jira's
        ``jira:issue_created``), else the family file (``issues`` for ``issues.opened``), the connector's
        ``_default``, the global ``_default``."""
        key = (connector, event_type)
        if key not in self._defaults:  # built-in files do not change while hub runs: looked up once
            if len(self._defaults) > 10_000:  # senders choose event types freely: the memo stays bounded
                self._defaults.clear()
            self._defaults[key] = self._find_default(connector, event_type)
        return self._defaults[key]

    def _find_default(self, connector: str, event_type: str) -> str | None:
        exact = f"{connector}/{event_type}"
        if exact in self._specs:
            return exact
        listed = self._listing(connector, event_type)
        if listed is not None:
            return listed
        for name in (f"{connector}/{event_type.split('.')[0]}", f"{connector}/_default", "_default"):
            if name in self._specs:
                return name
        return None

    def _listing(self, connector: str, event_type: str) -> str | None:
        prefix = f"{connector}/"
        mine = [(n, s) for n, s in sorted(self._specs.items()) if n.startswith(prefix)]
        for name, spec in mine:
            if event_type in spec.events:
                return name
        for name, spec in mine:
            if any(fnmatch.fnmatchcase(event_type, p) for p in spec.events if p != event_type):
                return name
        return None

    def resolve(self, connector: str, event_type: str, ref: MappingRef) -> MappingSpec:
        """The mapping a route uses for one event; MappingError when there is none."""
        return self.resolve_versioned(connector, event_type, ref)[0]

    def _inline(self, ref: dict[str, Any]) -> MappingSpec:
        """A route's inline mapping, parsed once per configuration snapshot (the dict is the snapshot's)."""
        cached = self._inline_cache.get(id(ref))
        if cached is not None and cached[0] is ref:
            return cached[1]
        spec = parse_inline(ref)
        if len(self._inline_cache) > 1024:
            self._inline_cache.clear()
        self._inline_cache[id(ref)] = (ref, spec)
        return spec

    def resolve_versioned(self, connector: str, event_type: str, ref: MappingRef) -> tuple[MappingSpec, str]:
        """The mapping and which version of what it is: ``builtin:<name>``, ``<name>@<version>``, ``inline``."""
        if ref is None:
            name = self.default_name(connector, event_type)
            if name is None:
                raise MappingError(f"no default mapping for {connector} event {event_type}")
            return self._specs[name], f"builtin:{name}"
        if isinstance(ref, dict):
            return self._inline(ref), "inline"
        managed = self._managed.get(ref)
        if managed is not None:
            return managed[0], f"{ref}@{managed[1]}"
        for name in (f"{connector}/{ref}", ref):
            if name in self._specs:
                return self._specs[name], f"builtin:{name}"
        raise MappingError(f"no mapping named {ref!r}")


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
