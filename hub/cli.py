"""The ``hub`` command: serve, worker, migrate, openapi, replay."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from hub.config import ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="hub: business-tool webhooks → RSE posts.")


def _settings() -> Settings:
    try:
        settings = load_settings()
        from hub.crypto import secret_box_for

        secret_box_for(settings)  # fail fast on a missing or short HUB_SECRET_KEY
        return settings
    except ConfigError as exc:
        typer.echo(f"hub: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the API (and, on the embedded default, the delivery worker) in one process."""
    from hub.front.serve import serve as run_front
    from hub.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)
    run_front(settings, host, port)


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    from hub.db.engine import create_engine
    from hub.db.migrate import upgrade

    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo("database is up to date")


@app.command()
def worker() -> None:
    """Run a delivery worker (scaled mode: needs HUB_DATABASE_URL=postgresql+asyncpg://… and HUB_REDIS_URL)."""
    from hub.logs import configure_logging
    from hub.scaled.worker import check_settings, run_worker

    settings = _settings()
    try:
        check_settings(settings)
    except ConfigError as exc:
        typer.echo(f"hub: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run_worker(settings))


@app.command()
def replay(
    source: Annotated[str | None, typer.Option(help="Only dead letters of this source id.")] = None,
    target: Annotated[str | None, typer.Option(help="Only dead letters to this target id.")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO 8601).")] = None,
    error: Annotated[str | None, typer.Option(help="Last error contains this text.")] = None,
    url: Annotated[str, typer.Option(envvar="HUB_URL", help="hub's base URL.")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(envvar="HUB_API_KEY", help="An admin API key.")] = "",
) -> None:
    """Retry dead letters in bulk, with a progress bar (a tracked job, also visible over the API)."""
    from hub.replay_cli import run_replay

    body = {"source_id": source, "target_id": target, "since": since, "until": until, "error_contains": error}
    raise typer.Exit(run_replay(url, key, {k: v for k, v in body.items() if v is not None}))


def openapi_document() -> str:
    from hub.app import create_app

    spec = create_app(Settings(_env_file=None)).openapi()
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the spec.")] = Path("openapi/openapi.json"),
) -> None:
    """Write the OpenAPI spec of the API (committed under openapi/)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(openapi_document())
    typer.echo(f"wrote {output}")


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"hub: {exc}", err=True)
        sys.exit(2)
