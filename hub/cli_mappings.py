"""``hub mappings test``: render every sample event through its default mapping and compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Mappings: check them against the committed sample posts.")


@app.command("test")
def test_mappings(
    update: Annotated[
        bool, typer.Option("--update", help="Rewrite the committed posts with what renders now.")
    ] = False,
    samples: Annotated[
        Path | None, typer.Option(help="Directory of sample events (default: the committed ones).")
    ] = None,
    connector: Annotated[str | None, typer.Option(help="Only this connector's samples.")] = None,
) -> None:
    """Render every sample event through its connector's default mapping and compare with its post."""
    from hub.config import load_settings
    from hub.connectors.catalogue import builtin_catalogue
    from hub.mapping.catalogue import builtin_mappings
    from hub.mapping.samples import check, load_samples
    from hub.mapping.samples import update as rewrite
    from hub.paths import samples_dir

    settings = load_settings()
    connectors = builtin_catalogue(settings.connectors_dir)
    mappings = builtin_mappings(settings.mappings_dir)
    root = samples or samples_dir()
    if update:
        changed = rewrite(mappings, connectors, root)
        typer.echo(f"{changed} post(s) rewritten under {root}")
        return
    found = load_samples(root, connector)
    mismatches = check(mappings, connectors, found)
    for m in mismatches:
        typer.echo(f"✗ {m.sample.name} ({m.sample.type})", err=True)
        if m.error:
            typer.echo(f"    mapping failed: {m.error}", err=True)
        else:
            typer.echo(f"    expected: {json.dumps(m.sample.post, ensure_ascii=False)[:400]}", err=True)
            typer.echo(f"    got:      {json.dumps(m.got, ensure_ascii=False)[:400]}", err=True)
    typer.echo(f"{len(found) - len(mismatches)}/{len(found)} sample posts as committed")
    if mismatches:
        raise typer.Exit(1)
