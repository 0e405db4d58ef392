"""The ``hub`` command: serve, worker, migrate, keys, replay, openapi."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config import ConfigError, Settings, load_settings

_T = TypeVar("_T")
app = typer.Typer(add_completion=False, no_args_is_help=True, help="hub: business-tool webhooks → RSE posts.")


def _print_version(value: bool) -> None:
    if value:
        from hub import __version__

        typer.echo(f"hub {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print hub's version and exit.")
    ] = False,
) -> None:
    """hub: business-tool webhooks → RSE posts."""


def _subcommands() -> None:
    from hub import cli_mappings, cli_people

    app.add_typer(cli_mappings.app, name="mappings")
    app.add_typer(cli_people.app, name="people")


_subcommands()


def settings_or_exit() -> Settings:
    return _settings()


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
    """Run the API and, on the embedded default, the delivery worker (in a second process: HUB_DELIVERY_PROCESS)."""
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
    from hub.fastloop import run_fast

    run_fast(run_worker(settings))


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


keys_app = typer.Typer(no_args_is_help=True, help="API keys, on the configured database (no running hub needed).")
app.add_typer(keys_app, name="keys")


class Scope(StrEnum):
    admin = "admin"
    read = "read"


def _on_database(work: Callable[[AsyncEngine], Awaitable[_T]]) -> _T:
    """Run ``work`` against the configured database, migrated first (a fresh install has no tables yet)."""
    from hub.db.engine import create_engine
    from hub.db.migrate import upgrade

    settings = _settings()

    async def run() -> _T:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"hub: the database is unreachable: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'admin' or 'ci pipeline'.")],
    scope: Annotated[Scope, typer.Option(help="admin may change everything; read may only read.")] = Scope.read,
) -> None:
    """Create an API key and print it (only once: hub keeps its hash). Works with no key left (no lock-out)."""
    from hub.api.keys import insert_key
    from hub.auth.principal import command_line
    from hub.crypto import new_api_key

    if not name.strip() or len(name) > 200:
        typer.echo("hub: --name must be 1 to 200 characters", err=True)
        raise typer.Exit(2)
    key = new_api_key()
    row = _on_database(lambda engine: insert_key(engine, name, scope.value, key, command_line()))
    typer.echo(f"created {scope.value} key {row['id']} ({name}); it is shown only this once:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, names, scopes; never the keys)."""
    import sqlalchemy as sa

    from hub.db import tables as t

    async def rows(engine: AsyncEngine) -> list[Any]:
        async with engine.connect() as conn:
            stmt = sa.select(t.api_keys.c.id, t.api_keys.c.scope, t.api_keys.c.name).order_by(t.api_keys.c.created_at)
            return list((await conn.execute(stmt)).all())

    for row in _on_database(rows):
        typer.echo(f"{row.id}\t{row.scope}\t{row.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_…), from `hub keys list`.")]) -> None:
    """Revoke an API key."""
    import sqlalchemy as sa

    from hub.audit import record
    from hub.auth.principal import command_line
    from hub.db import tables as t

    async def revoke(engine: AsyncEngine) -> int:
        async with engine.begin() as conn:
            res = await conn.execute(sa.delete(t.api_keys).where(t.api_keys.c.id == key_id))
            if res.rowcount:
                await record(conn, command_line(), "key", key_id, "delete")
            return int(res.rowcount)

    if not _on_database(revoke):
        typer.echo(f"hub: no API key with id {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}", err=True)


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
