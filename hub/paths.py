"""Where the built-in connectors and mappings are: the source tree, or inside the installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def builtin_dir(name: str) -> Path:
    """``connectors`` or ``mappings``: next to the package in a checkout, under hub/builtin in a wheel."""
    in_tree = _PKG.parent / name
    if in_tree.is_dir():
        return in_tree
    return _PKG / "builtin" / name


def samples_dir() -> Path:
    """The committed sample events and their expected posts: tests/expected in a checkout, hub/builtin/expected
    in a wheel."""
    in_tree = _PKG.parent / "tests" / "expected"
    if in_tree.is_dir():
        return in_tree
    return _PKG / "builtin" / "expected"
