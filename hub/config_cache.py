"""Sources, targets and routes, read from the database into memory and refreshed after a short TTL.

Every process (API or worker) serves the hot paths from this cache; writes through the API invalidate
it locally, and other processes see the change within ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.connectors.catalogue import ConnectorCatalogue
from hub.connectors.spec import ConnectorSpec
from hub.crypto import SecretBox
from hub.db import tables as t
from hub.delivery.calm import Digest, QuietHours, digest_order_key
from hub.mapping.catalogue import MappingCatalogue, parse_inline
from hub.mapping.render import MappingError
from hub.mapping.spec import MappingSpec
from hub.people.directory import Directory
from hub.people.store import load_directory
from hub.targets.base import TargetConfig
from hub.targets.registry import get_target
from hub.targets.secrets import merge

_T = TypeVar("_T")
MISS_RELOAD_AFTER = 0.5  # seconds: a snapshot younger than this is trusted on a miss


@dataclass(frozen=True)
class SourceInfo:
    id: str
    connector: str
    name: str
    secret: str | None
    settings: dict[str, Any]
    enabled: bool
    previous_secret: str | None = None  # still accepted until previous_until (secret rotation)
    previous_until: float | None = None
    secret_settings: dict[str, Any] = field(default_factory=dict)  # settings the connector declares secret

    def previous_secret_at(self, now: float) -> str | None:
        if self.previous_secret and self.previous_until is not None and now < self.previous_until:
            return self.previous_secret
        return None


@dataclass(frozen=True)
class TargetInfo:
    id: str
    kind: str
    name: str
    config: TargetConfig
    retry_schedule: list[float] | None
    rate_limit_per_second: float | None
    enabled: bool


@dataclass(frozen=True)
class RouteInfo:
    id: str
    source_id: str
    target_id: str
    events: list[str]
    mapping: Any
    enabled: bool

    coalesce_seconds: float | None = None
    quiet_hours: QuietHours | None = None
    digest: Digest | None = None
    notify_direct: bool = False

    def matches(self, event_type: str) -> bool:
        return self.enabled and any(fnmatch.fnmatchcase(event_type, p) for p in self.events)

    def first_due(self, now: float) -> float:
        """When a new delivery of this route falls due: at once, or after its coalescing window or at
        the next digest (business hours are checked when it is sent)."""
        if self.digest is not None:
            return self.digest.next_time(now)
        if self.coalesce_seconds:
            return now + self.coalesce_seconds
        return now

    def order_key(self, subject: str | None, delivery_id: str) -> str:
        if self.digest is not None:
            return digest_order_key(self.id)
        return subject or delivery_id


@dataclass
class _Snapshot:
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    targets: dict[str, TargetInfo] = field(default_factory=dict)
    routes: dict[str, RouteInfo] = field(default_factory=dict)
    routes_by_source: dict[str, list[RouteInfo]] = field(default_factory=dict)
    directory: Directory = field(default_factory=Directory)
    loaded_at: float = 0.0


def target_config(kind: str, config: dict[str, Any], secrets: dict[str, Any]) -> TargetConfig:
    target = get_target(kind)
    if target is None:
        raise ValueError(f"unknown target kind {kind!r}")
    return target.Config.model_validate(merge(config, secrets))


async def _managed_mappings(conn: AsyncConnection) -> dict[str, tuple[MappingSpec, int]]:
    """The current version of every mapping managed over the API."""
    m, v = t.mappings, t.mapping_versions
    stmt = sa.select(m.c.id, m.c.version, v.c.spec).join(
        v, sa.and_(v.c.mapping_id == m.c.id, v.c.version == m.c.version)
    )
    out: dict[str, tuple[MappingSpec, int]] = {}
    for row in await conn.execute(stmt):
        try:
            out[row.id] = (parse_inline(row.spec), row.version)
        except MappingError:  # validated when written; a template rule tightened since: left out, deliveries say so
            continue
    return out


class ConfigCache:
    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox,
        connectors: ConnectorCatalogue,
        ttl: float = 2.0,
        mappings: MappingCatalogue | None = None,
    ) -> None:
        self._engine = engine
        self._box = box
        self._connectors = connectors
        self._mappings = mappings
        self._builtin_ids = {c.id for c in connectors.all()}
        self._ttl = ttl
        self._snap = _Snapshot()
        self._lock = asyncio.Lock()
        self._generation = 0  # bumped by every write: a load that overlapped one is not trusted as fresh
        self.on_invalidate: list[Callable[[], None]] = []  # e.g. tell the delivery process (hub/delivery/process.py)

    def invalidate(self) -> None:
        self._generation += 1
        self._snap.loaded_at = 0.0
        for listener in self.on_invalidate:
            listener()

    async def _fresh(self, force: bool = False) -> _Snapshot:
        snap = self._snap
        if not force and time.monotonic() - snap.loaded_at < self._ttl:
            return snap
        async with self._lock:
            if self._snap is not snap and time.monotonic() - self._snap.loaded_at < self._ttl:
                return self._snap
            generation = self._generation
            snap = await self._load()
            if generation != self._generation:  # written meanwhile: usable now, reloaded on the next look
                snap.loaded_at = 0.0
            self._snap = snap
            return snap

    async def _load(self) -> _Snapshot:
        snap = _Snapshot()
        async with self._engine.connect() as conn:
            custom = {r["id"]: r["spec"] for r in (await conn.execute(sa.select(t.custom_connectors))).mappings()}
            for connector_id, spec in custom.items():
                if connector_id not in self._builtin_ids:
                    self._connectors.add_custom(spec)
            for connector in self._connectors.all():  # removed over the API, maybe by another process
                if connector.id not in self._builtin_ids and connector.id not in custom:
                    self._connectors.remove(connector.id)
            if self._mappings is not None:
                self._mappings.set_managed(await _managed_mappings(conn))
            snap.directory = await load_directory(conn)
            for row in (await conn.execute(sa.select(t.sources))).mappings():
                secret = self._box.open(row["secret_enc"]) if row["secret_enc"] else None
                previous = self._box.open(row["previous_secret_enc"]) if row["previous_secret_enc"] else None
                snap.sources[row["id"]] = SourceInfo(
                    row["id"],
                    row["connector"],
                    row["name"],
                    secret,
                    row["settings"] or {},
                    row["enabled"],
                    previous,
                    row["previous_secret_until"],
                    self._box.open_json(row["secret_settings_enc"]),
                )
            for row in (await conn.execute(sa.select(t.targets))).mappings():
                try:
                    cfg = target_config(row["kind"], row["config"], self._box.open_json(row["secrets_enc"]))
                except ValueError:
                    continue
                snap.targets[row["id"]] = TargetInfo(
                    row["id"],
                    row["kind"],
                    row["name"],
                    cfg,
                    row["retry_schedule"],
                    row["rate_limit_per_second"],
                    row["enabled"],
                )
            for row in (await conn.execute(sa.select(t.routes).order_by(t.routes.c.id))).mappings():
                route = RouteInfo(
                    row["id"],
                    row["source_id"],
                    row["target_id"],
                    list(row["events"]),
                    row["mapping"],
                    row["enabled"],
                    row["coalesce_seconds"],
                    QuietHours.model_validate(row["quiet_hours"]) if row["quiet_hours"] else None,
                    Digest.model_validate(row["digest"]) if row["digest"] else None,
                    bool(row["notify_direct"]),
                )
                snap.routes[route.id] = route
                snap.routes_by_source.setdefault(route.source_id, []).append(route)
        snap.loaded_at = time.monotonic()
        return snap

    async def refresh_if_stale(self) -> None:
        await self._fresh()

    async def _find(self, pick: Callable[[_Snapshot], _T | None]) -> _T | None:
        """Look something up; a miss in a snapshot older than half a second reloads once: it may have
        been created a moment ago by another process (the API, for a worker)."""
        snap = await self._fresh()
        found = pick(snap)
        if found is None and time.monotonic() - snap.loaded_at > MISS_RELOAD_AFTER:
            found = pick(await self._fresh(force=True))
        return found

    async def connector(self, connector_id: str) -> ConnectorSpec | None:
        """A built-in or custom connector, custom ones registered by any process included."""
        return await self._find(lambda _: self._connectors.get(connector_id))

    async def source(self, source_id: str) -> SourceInfo | None:
        return await self._find(lambda snap: snap.sources.get(source_id))

    async def routes_for(self, source_id: str, event_type: str) -> list[RouteInfo]:
        snap = await self._fresh()
        return [r for r in snap.routes_by_source.get(source_id, ()) if r.matches(event_type)]

    async def route(self, route_id: str) -> RouteInfo | None:
        return await self._find(lambda snap: snap.routes.get(route_id))

    async def target(self, target_id: str) -> TargetInfo | None:
        return await self._find(lambda snap: snap.targets.get(target_id))

    async def directory(self) -> Directory:
        """The people directory, for mentions (as fresh as the rest of the configuration)."""
        return (await self._fresh()).directory
