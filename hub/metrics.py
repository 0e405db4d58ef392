"""Prometheus metrics. Each process exposes its own registry at /metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric


class _HasOutcome(Protocol):
    status: str
    attempt: Any


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_received = Counter(
            "hub_events_received", "Webhooks accepted and stored", ["connector"], registry=self.registry
        )
        self.events_rejected = Counter(
            "hub_events_rejected", "Webhooks refused, by cause", ["cause"], registry=self.registry
        )
        self.events_duplicate = Counter(
            "hub_events_duplicate", "Webhooks recognised as repeats", registry=self.registry
        )
        self.events_purged = Counter(
            "hub_events_purged", "Finished events removed after HUB_RETENTION_DAYS", registry=self.registry
        )
        self.deliveries = Counter("hub_deliveries", "Delivery attempts by outcome", ["outcome"], registry=self.registry)
        self.attempt_latency = Histogram(
            "hub_attempt_latency_seconds",
            "Latency of one delivery attempt",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.queue_depth = Gauge("hub_queue_depth", "Deliveries pending or being sent", registry=self.registry)
        self.deliveries_by_status = Gauge(
            "hub_deliveries_by_status", "Deliveries in the database, by status", ["status"], registry=self.registry
        )
        self.breaker_state = Gauge(
            "hub_breaker_state",
            "Circuit breaker per target: 0 closed, 1 half_open, 2 open, 3 disabled",
            ["target_id"],
            registry=self.registry,
        )

        # storage providers (issue 8): fetched changes, fetches, the subscriptions hub keeps alive
        self.storage_changes = Counter(
            "hub_storage_changes",
            "Changes fetched from storage providers: posted, or filtered out (outside_folders, ignored_type…)",
            ["connector", "outcome"],
            registry=self.registry,
        )
        self.storage_fetches = Counter(
            "hub_storage_fetches",
            "Fetches of a provider's change feed, by outcome (ok, retry, refused, reset)",
            ["connector", "outcome"],
            registry=self.registry,
        )
        self.storage_fetch_failing = Gauge(
            "hub_storage_fetch_failing", "1 while a source's last fetch failed", ["source_id"], registry=self.registry
        )
        self.storage_subscription_expiry = Gauge(
            "hub_storage_subscription_expiry_seconds",
            "Seconds until the provider subscription hub keeps alive for a source expires (negative: expired)",
            ["source_id"],
            registry=self.registry,
        )
        self.storage_subscription_failing = Gauge(
            "hub_storage_subscription_failing",
            "1 while hub cannot create or renew a source's provider subscription",
            ["source_id"],
            registry=self.registry,
        )

    def record(self, outcomes: Iterable[_HasOutcome]) -> None:
        for o in outcomes:
            self.deliveries.labels(o.status).inc()
            if o.attempt is not None and o.attempt.latency_ms:
                self.attempt_latency.observe(o.attempt.latency_ms / 1000)


_SampleKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Family:
    """One metric family as another process of the same hub sends it (hub/delivery/process.py)."""

    name: str
    documentation: str
    type: str
    unit: str
    samples: dict[_SampleKey, float]

    @classmethod
    def of(cls, metric: Metric) -> Family:
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in metric.samples}
        return cls(metric.name, metric.documentation, metric.type, metric.unit, samples)

    def to_json(self) -> dict[str, Any]:
        samples = [[name, dict(labels), value] for (name, labels), value in self.samples.items()]
        return {"name": self.name, "doc": self.documentation, "type": self.type, "unit": self.unit, "samples": samples}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Family:
        samples = {
            (str(n), tuple(sorted((str(k), str(v)) for k, v in labels.items()))): float(value)
            for n, labels, value in data["samples"]
        }
        return cls(str(data["name"]), str(data["doc"]), str(data["type"]), str(data["unit"]), samples)

    def metric(self) -> Metric:
        out = Metric(self.name, self.documentation, self.type, self.unit)
        for (name, labels), value in self.samples.items():
            out.add_sample(name, dict(labels), value)
        return out


def merge(ours: Iterable[Metric], theirs: Iterable[Family]) -> list[Metric]:
    """One process's families with another's: counters and histograms add up (their ``_created`` keeps
    the earlier); a gauge keeps our value where we have one (we set the database's gauges ourselves)."""
    merged = {f.name: f for f in (Family.of(m) for m in ours)}
    for other in theirs:
        mine = merged.get(other.name)
        if mine is None:
            merged[other.name] = other
            continue
        for key, value in other.samples.items():
            if key not in mine.samples:
                mine.samples[key] = value
            elif key[0].endswith("_created"):
                mine.samples[key] = min(mine.samples[key], value)
            elif mine.type != "gauge":
                mine.samples[key] += value
    return [f.metric() for f in merged.values()]


class Merged:
    """A collector for ``generate_latest``: the families of ``merge``."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)
