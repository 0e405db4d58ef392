"""`hub mappings test`: every committed sample post still renders as committed; a change is shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from hub.cli import app
from hub.paths import samples_dir

runner = CliRunner()


def test_every_committed_sample_post_renders_as_committed() -> None:
    result = runner.invoke(app, ["mappings", "test"])
    assert result.exit_code == 0, result.output
    done, total = result.output.strip().splitlines()[-1].split()[0].split("/")
    assert done == total and int(total) > 10


def test_a_post_that_changed_fails_and_update_rewrites_it(tmp_path: Path) -> None:
    root = tmp_path / "expected"
    shutil.copytree(samples_dir() / "github", root / "github")
    path = root / "github" / "issues.opened.json"
    items = json.loads(path.read_text())
    items[0]["post"]["title"] = "an older wording"
    path.write_text(json.dumps(items))
    failed = runner.invoke(app, ["mappings", "test", "--samples", str(root)])
    assert failed.exit_code == 1
    assert "github/issues.opened#0" in failed.output and "an older wording" in failed.output
    updated = runner.invoke(app, ["mappings", "test", "--samples", str(root), "--update"])
    assert updated.exit_code == 0 and updated.output.startswith("1 post(s) rewritten")
    assert runner.invoke(app, ["mappings", "test", "--samples", str(root)]).exit_code == 0
    assert json.loads(path.read_text())[0]["post"]["title"] == "Issue #1347 opened: Found a bug"
