"""The README stays true: every setting is in its configuration table, its test command is CI's."""

from __future__ import annotations

from pathlib import Path

from hub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [f"HUB_{name.upper()}" for name in Settings.model_fields if f"`HUB_{name.upper()}`" not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && pytest' in README
    assert 'pip install -q -e ".[test]"\npytest' in ci


def test_the_connectors_section_is_written_from_the_specs() -> None:
    from hub.connectors.catalogue import builtin_catalogue
    from hub.connectors.docs import rewrite

    assert rewrite(README, builtin_catalogue()) == README, "run: python -m hub.connectors.docs README.md"
    for spec in builtin_catalogue().all():
        assert spec.setup.strip(), f"connector {spec.id}: say in its `setup` how to point the provider at hub"
