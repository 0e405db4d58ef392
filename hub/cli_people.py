"""``hub people import|export``: the directory as CSV, straight on the configured database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="People: import and export the directory as CSV.")


async def _with_engine(work: str, text: str = "") -> tuple[str, dict[str, object] | None]:
    import time

    from hub.audit import record
    from hub.auth.principal import command_line
    from hub.cli import settings_or_exit
    from hub.db.engine import create_engine
    from hub.db.migrate import upgrade
    from hub.people.csv_io import export_csv, plan_import
    from hub.people.store import apply_import, load_directory

    engine = create_engine(settings_or_exit())
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            directory = await load_directory(conn)
            if work == "export":
                return export_csv(directory), None
            report = await apply_import(conn, plan_import(text, directory), time.time())
            details = {k: len(v) if isinstance(v, list) else v for k, v in report.items()}
            await record(conn, command_line(), "person", "*", "import", [], details)
            return "", report
    finally:
        await engine.dispose()


@app.command("import")
def import_people(
    file: Annotated[Path, typer.Argument(help="CSV file (see `hub people export`), or - for stdin.")],
) -> None:
    """Create and update people from CSV; prints what was created, updated and refused (with the line)."""
    from hub.people.csv_io import CsvError

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"hub: cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        _, report = asyncio.run(_with_engine("import", text))
    except CsvError as exc:
        typer.echo(f"hub: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    assert report is not None
    refused = report["refused"]
    assert isinstance(refused, list)
    typer.echo(
        f"created {len(report['created'])}, updated {len(report['updated'])}, "  # type: ignore[arg-type]
        f"unchanged {report['unchanged']}, refused {len(refused)}"
    )
    for item in refused:
        typer.echo(f"  line {item['line']}: {item['reason']}", err=True)
    if refused:
        raise typer.Exit(1)


@app.command("export")
def export_people(
    file: Annotated[Path | None, typer.Argument(help="Where to write (default: standard output).")] = None,
) -> None:
    """Write the directory as CSV."""
    text, _ = asyncio.run(_with_engine("export"))
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
