"""Everything a process needs at run time, built once from the settings."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import httpx
import sqlalchemy as sa
from httpx_aiohttp import AiohttpTransport
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.config import ConfigError, Settings
from hub.config_cache import ConfigCache
from hub.connectors.catalogue import ConnectorCatalogue, builtin_catalogue
from hub.crypto import SecretBox, secret_box_for
from hub.db import tables as t
from hub.db.engine import create_engine
from hub.delivery.pg_path import PgPath, dsn_of
from hub.delivery.ratelimit import LocalRateLimiter, RateLimiter
from hub.delivery.sqlite_path import SqlitePath
from hub.ingest.batcher import IngestBatcher
from hub.mapping.catalogue import MappingCatalogue, builtin_mappings
from hub.mapping.pool import RenderPool
from hub.metrics import Family, Metrics
from hub.targets.egress import EgressPolicy, PolicyResolver
from hub.targets.oauth import TokenCache
from hub.targets.stores import SqlInboxStore, SqlTokenStore

log = logging.getLogger("hub.app")


class Dispatcher(Protocol):
    """Tells the executors that deliveries are due. The database decides what; this only wakes them."""

    async def notify(self) -> None: ...


class NullDispatcher:
    async def notify(self) -> None:
        return None


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    connectors: ConnectorCatalogue
    mappings: MappingCatalogue
    cache: ConfigCache
    http: httpx.AsyncClient
    egress: EgressPolicy
    metrics: Metrics = field(default_factory=Metrics)
    dispatcher: Dispatcher = field(default_factory=NullDispatcher)
    ratelimiter: RateLimiter = field(default_factory=LocalRateLimiter)
    readiness_probes: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    background: Callable[..., Awaitable[None]] | None = None  # submit(job function name, job id)
    metric_sources: list[Callable[[], Awaitable[list[Family]]]] = field(default_factory=list)  # other processes'
    ingest: IngestBatcher = field(init=False)
    tokens: TokenCache = field(init=False)  # outbound OAuth2 tokens, encrypted at rest
    inbox: SqlInboxStore = field(init=False)
    renderer: RenderPool = field(init=False)  # mappings render in killable processes
    sqlite: SqlitePath | None = field(init=False)  # the embedded default's hot statements on plain sqlite3
    pg: PgPath | None = field(init=False)  # the same on Postgres, on plain asyncpg
    autocommit: AsyncEngine = field(init=False)  # for a lone statement: no BEGIN/COMMIT round trips on Postgres

    def __post_init__(self) -> None:
        s = self.settings
        self.renderer = RenderPool(s.render_processes, s.render_deadline, s.render_memory_mb)
        # Postgres: the hot statements (ingest batches, claims, loads, outcomes) on plain asyncpg
        self.pg = PgPath(dsn_of(self.engine.url)) if self.engine.dialect.name == "postgresql" else None
        self.ingest = IngestBatcher(self.engine, pg=self.pg)
        writer, path = self.ingest.sqlite_writer, self.engine.url.database
        self.sqlite = SqlitePath(writer, path) if writer is not None and path else None
        # A lone statement needs no BEGIN and COMMIT/ROLLBACK around it (two round trips): the delivery
        # hot path claims, and reads rows, breaker states and anchors that way. (On SQLite it uses sqlite3.)
        self.autocommit = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )
        self.tokens = TokenCache(self.http, SqlTokenStore(self.engine, self.box), self.egress)
        self.inbox = SqlInboxStore(self.engine)

    @property
    def direct(self) -> AiohttpTransport | None:
        """The HTTP client's aiohttp transport, for sends that need no httpx feature (a mock is never
        bypassed)."""
        transport = self.http._transport
        return transport if isinstance(transport, AiohttpTransport) else None

    async def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            await self.pg.close()
        await self.renderer.close()
        await self.http.aclose()
        await self.engine.dispose()


def build_runtime(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Runtime:
    """Build the runtime; ``transport`` lets tests swap the outbound HTTP transport."""
    box = secret_box_for(settings)
    engine = create_engine(settings)
    connectors = builtin_catalogue(settings.connectors_dir)
    mappings = builtin_mappings(settings.mappings_dir)
    egress = EgressPolicy(block_private=settings.block_private_targets)
    if transport is None:
        transport = outbound_transport(settings.worker_concurrency * 2, egress)
    http = httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=settings.delivery_timeout)
    cache = ConfigCache(engine, box, connectors, mappings=mappings)
    return Runtime(settings, engine, box, connectors, mappings, cache, http, egress)


def outbound_transport(max_connections: int, egress: EgressPolicy) -> AiohttpTransport:
    """aiohttp under the httpx API (several times less CPU per request than httpcore), resolving host
    names through the egress policy at connect time."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=100)
    ssl_context = httpx.create_ssl_context()

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=ssl_context,
            resolver=PolicyResolver(egress),
        )
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(limits=limits, client=session)


async def _one_sealed_secret(conn: AsyncConnection) -> str | None:
    for column in (t.sources.c.secret_enc, t.targets.c.secrets_enc):
        token = await conn.scalar(sa.select(column).where(column.is_not(None)).limit(1))
        if token:
            return str(token)
    return None


def _startup_failure(message: str) -> ConfigError:
    full = f"invalid configuration: {message}"
    log.error(full)
    return ConfigError(full)


async def check_secret_key(rt: Runtime) -> None:
    """Before serving: the schema is there, and HUB_SECRET_KEY opens the stored secrets (a changed key
    would fail every webhook later, as if the database were down)."""
    async with rt.engine.connect() as conn:
        if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table("sources")):
            raise _startup_failure("HUB_DATABASE_URL: the database has no hub tables: run `hub migrate`")
        token = await _one_sealed_secret(conn)
    if token:
        try:
            rt.box.open(token)
        except ConfigError:
            raise _startup_failure("HUB_SECRET_KEY: it does not decrypt the secrets stored in the database") from None
