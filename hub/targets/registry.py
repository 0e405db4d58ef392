"""Target kinds, discovered: every module of ``hub/targets/kinds/`` that defines a Target subclass with a
``kind``. Adding a target = adding one module; two modules claiming one kind is an error at start."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from hub.targets import kinds
from hub.targets.base import Target


class DuplicateKind(Exception):
    """Two target modules claim the same kind."""


def discover(package: ModuleType = kinds) -> dict[str, Target]:
    found: dict[str, Target] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if not (isinstance(obj, type) and issubclass(obj, Target) and obj.__module__ == module.__name__):
                continue
            if "kind" not in vars(obj):
                continue
            if obj.kind in found:
                raise DuplicateKind(f"target kind {obj.kind!r} is defined twice: {type(found[obj.kind])} and {obj}")
            found[obj.kind] = obj()
    return dict(sorted(found.items()))


TARGETS: dict[str, Target] = discover()


def get_target(kind: str) -> Target | None:
    return TARGETS.get(kind)
